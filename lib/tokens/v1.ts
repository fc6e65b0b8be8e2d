import { createHmac, randomBytes } from 'node:crypto'
import { decodeSecret } from '../registry/ids'

// docs/protocol.md, the v1 token. The domain prefix keeps these MACs from ever being valid for
// another protocol that happens to use the same secret.
const DOMAIN = 'rendezvous-v1\n'

// Bounded so a hostile token cannot make us parse a huge number: 16 significant
// digits cover every second a Number holds exactly. Leading zeros beyond them
// are allowed up to 32 characters, for senders that print a fixed width.
const MAX_SECONDS_LENGTH = 32
const SECONDS_PATTERN = /^(?=[0-9]{1,32}$)0*[0-9]{1,16}$/
const NONCE_PATTERN = /^[A-Za-z0-9_-]{16,64}$/
// HMAC-SHA256 is 32 bytes: exactly 43 base64url characters without padding.
const MAC_PATTERN = /^[A-Za-z0-9_-]{43}$/
const MAX_TOKEN_LENGTH = 3 + MAX_SECONDS_LENGTH + 1 + 64 + 1 + 43

export interface ParsedV1Token {
  seconds: number
  /**
   * The seconds exactly as sent. The MAC covers these characters, so a
   * sender that writes leading zeros must still verify.
   */
  secondsText: string
  nonce: string
  mac: string
}

export function v1Mac (id: string, secret: Buffer, seconds: string, nonce: string): Buffer {
  return createHmac('sha256', secret)
    .update(DOMAIN + id.toLowerCase() + '\n' + seconds + '\n' + nonce)
    .digest()
}

export function createV1Token (id: string, secretBase32: string, opts: { now?: number, nonce?: string } = {}): string {
  const nonce = opts.nonce ?? randomBytes(16).toString('base64url')
  // A server would refuse it anyway; failing here names the real mistake.
  if (!NONCE_PATTERN.test(nonce)) throw new TypeError('nonce must be 16 to 64 characters of [A-Za-z0-9_-]')
  const seconds = String(Math.floor((opts.now ?? Date.now()) / 1000))
  const mac = v1Mac(id, decodeSecret(secretBase32), seconds, nonce).toString('base64url')
  return `v1.${seconds}.${nonce}.${mac}`
}

export function parseV1Token (token: string): ParsedV1Token | undefined {
  if (token.length > MAX_TOKEN_LENGTH) return undefined
  const parts = token.split('.')
  if (parts.length !== 4 || parts[0] !== 'v1') return undefined
  const [, secondsText, nonce, mac] = parts as [string, string, string, string]
  if (!SECONDS_PATTERN.test(secondsText) || !NONCE_PATTERN.test(nonce) || !MAC_PATTERN.test(mac)) return undefined
  return { seconds: Number(secondsText), secondsText, nonce, mac }
}
