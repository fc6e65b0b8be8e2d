import { timingSafeEqual } from 'node:crypto'
import { HOTP, Secret } from 'otpauth'
import { decodeSecret } from '../registry/ids'

// docs/protocol.md, the TOTP token: RFC 6238 as the original's hidden servers compute it.
export const TOTP_STEP_MS = 30_000
const CODE_PATTERN = /^[0-9]{6,8}$/
const OFFSETS = [-1, 0, 1] as const

export type TotpOffset = typeof OFFSETS[number]

export interface TotpMatch {
  /** The absolute step (counter) the code belongs to. */
  step: number
  /** Where that step lies relative to the step of `now`. */
  offset: TotpOffset
}

/** Whether a string has the shape of a TOTP code: 6 to 8 decimal digits. */
export function isTotpCode (value: string): boolean {
  return CODE_PATTERN.test(value)
}

export function totpStep (now: number): number {
  return Math.floor(now / TOTP_STEP_MS)
}

function toSecret (key: Buffer): Secret {
  return new Secret({ buffer: key.buffer.slice(key.byteOffset, key.byteOffset + key.byteLength) as ArrayBuffer })
}

function codeAt (secret: Secret, step: number, digits: number): string {
  return HOTP.generate({ secret, algorithm: 'SHA1', digits, counter: step })
}

/**
 * The step among (current - 1, current, current + 1) whose code is `code`,
 * or undefined. The code's length is its number of digits. All three codes
 * are computed and compared whatever the outcome, so the time taken says
 * nothing about which step matched or how close a guess came.
 */
export function matchTotp (key: Buffer, code: string, now: number = Date.now()): TotpMatch | undefined {
  if (!isTotpCode(code)) return undefined
  const secret = toSecret(key)
  const given = Buffer.from(code)
  const current = totpStep(now)
  let match: TotpMatch | undefined
  for (const offset of OFFSETS) {
    const step = current + offset
    if (step < 0) continue
    const expected = Buffer.from(codeAt(secret, step, code.length))
    if (timingSafeEqual(expected, given) && match === undefined) match = { step, offset }
  }
  return match
}

/** The code for `now`, as an agent or a hidden server built for the original sends it. */
export function createTotp (secretBase32: string, now: number = Date.now(), digits = 6): string {
  if (!Number.isInteger(digits) || digits < 6 || digits > 8) throw new RangeError('digits must be 6, 7 or 8')
  return codeAt(toSecret(decodeSecret(secretBase32)), totpStep(now), digits)
}
