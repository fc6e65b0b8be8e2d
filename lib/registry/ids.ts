import { randomBytes } from 'node:crypto'
import { Secret } from 'otpauth'
import { InvalidSecretError } from '../errors'

// docs/protocol.md, Identities: 1 to 128 characters of the URL "unreserved" set.
export const ID_PATTERN = /^[A-Za-z0-9._~-]{1,128}$/
const BASE32_PATTERN = /^[A-Z2-7]+$/

export function isValidId (value: string): boolean {
  return ID_PATTERN.test(value)
}

/** The canonical (lower-case) form of an ID, or undefined when it is not a valid ID. */
export function canonicalId (value: string): string | undefined {
  return isValidId(value) ? value.toLowerCase() : undefined
}

export function generateId (): string {
  return globalThis.crypto.randomUUID()
}

/** A fresh secret: 20 random bytes in upper-case base32 without padding. */
export function generateSecret (bytes = 20): string {
  return encodeBase32(randomBytes(bytes))
}

export function encodeBase32 (bytes: Uint8Array): string {
  return new Secret({ buffer: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer }).base32.replace(/=/g, '')
}

export const MIN_SECRET_BYTES = 20

/**
 * Whether a string can serve as a stored secret: base32, 20 bytes or more.
 * Lenient about the length, as versions before canonicalSecret stored such
 * secrets; the relay and the agent decode them alike, ignoring leftover bits.
 */
export function isValidSecret (value: string): boolean {
  return BASE32_PATTERN.test(value) && Math.floor(value.length * 5 / 8) >= MIN_SECRET_BYTES
}

/**
 * The canonical form of a secret as a person may type or paste it (see
 * docs/cli.md, Secrets): spaces removed, `=` padding at the end dropped,
 * upper case, and the bits past the last whole byte zeroed. Those bits are
 * no part of the key, and authenticator apps and the otpauth URI zero them:
 * kept as typed, the stored secret would differ from the URI's for the same
 * key. Throws InvalidSecretError saying what is wrong with the rest.
 */
export function canonicalSecret (value: unknown): string {
  if (typeof value !== 'string') throw new InvalidSecretError('it must be a string')
  const secret = withoutPadding(value.replace(/\s+/g, '')).toUpperCase()
  const problem = secretProblem(secret)
  if (problem !== undefined) throw new InvalidSecretError(problem)
  return encodeBase32(decodeSecret(secret))
}

/** What is wrong with a canonical secret, or undefined when nothing is. */
export function secretProblem (secret: string): string | undefined {
  if (secret === '') return 'it is empty'
  // Not quoted: the character is part of a secret.
  if (!BASE32_PATTERN.test(secret)) return 'it holds characters other than A-Z and 2-7'
  // 5 bits a character: 1, 3 or 6 characters past a multiple of 8 leave bits that make no whole byte.
  if ([1, 3, 6].includes(secret.length % 8)) return `${secret.length} characters is not a possible length of base32 (one lost or added?)`
  const bytes = Math.floor(secret.length * 5 / 8)
  if (bytes < MIN_SECRET_BYTES) return `it holds only ${bytes} bytes (32 base32 characters or more are needed)`
  return undefined
}

export function decodeSecret (base32: string): Buffer {
  return Buffer.from(Secret.fromBase32(base32).bytes)
}

// By hand: /=+$/ is quadratic on a long run of '=' that does not end the text.
function withoutPadding (text: string): string {
  let end = text.length
  while (end > 0 && text.charCodeAt(end - 1) === 0x3d) end--
  return text.slice(0, end)
}
