import { randomBytes } from 'node:crypto'
import { Secret } from 'otpauth'

// docs/protocol.md, Identities: 1 to 128 characters of the URL "unreserved" set.
const ID_PATTERN = /^[A-Za-z0-9._~-]{1,128}$/
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
  return new Secret({ buffer: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer }).base32.replace(/=+$/, '')
}

/** Whether a string is an acceptable secret: base32, at least 20 bytes once decoded. */
export function isValidSecret (value: string): boolean {
  return BASE32_PATTERN.test(value) && Math.floor(value.length * 5 / 8) >= 20
}

export function decodeSecret (base32: string): Buffer {
  return Buffer.from(Secret.fromBase32(base32).bytes)
}
