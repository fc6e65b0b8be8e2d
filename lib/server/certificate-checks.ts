import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto'
import { isIP } from 'node:net'
import { createSecureContext } from 'node:tls'
import { CertificateDatesError, CertificateError, KeyMismatchError } from './errors'

/*
 * The checks a certificate and its key go through before a server presents
 * them, each refusal one line naming the file: a wrong file stops the start
 * (or a reload) rather than failing every handshake after it. The cluster's
 * peer certificates go through them too.
 */

export interface Labels { certLabel: string, keyLabel: string }

// How far a certificate's notBefore may lie ahead of this host's clock: an issuer's clock a little ahead of ours.
const CLOCK_SKEW_MS = 5 * 60_000

export function parseCertificate (pem: Buffer, label: string): X509Certificate {
  try {
    return new X509Certificate(pem)
  } catch {
    throw new CertificateError(`${label} is not a PEM certificate`)
  }
}

/**
 * Throws a one-line CertificateError when `key` is not a usable key for
 * `cert` (its first certificate, the one TLS presents); a KeyMismatchError,
 * one of them, when it is a key but not that certificate's. Also checks the
 * cluster's peer certificates.
 */
export function checkPair (cert: Buffer, key: Buffer, labels: Labels): void {
  const privateKey = parsePrivateKey(key, labels.keyLabel)
  // Not left to createSecureContext: OpenSSL lets a key of another type (EC for RSA) through, and every handshake then fails.
  if (!parseCertificate(cert, labels.certLabel).checkPrivateKey(privateKey)) {
    throw new KeyMismatchError(`${labels.keyLabel} is not the key of ${labels.certLabel}`)
  }
  // What the HTTPS server will do; running it now turns its other refusals (a key too weak) into a one-line error.
  try {
    createSecureContext({ cert, key })
  } catch (err) {
    throw new CertificateError(securityLevelRefusal(err, cert, key, labels.certLabel) ??
      `${labels.certLabel} and ${labels.keyLabel} cannot be used together: ${reason(err)}`)
  }
}

/*
 * OpenSSL's own words for these ("ca md too weak") read as a mismatch of the
 * two files when it is the certificate alone that must be reissued, often one
 * from a private CA of the SHA-1 years. A self-signed certificate's own
 * signature is not checked, so these come from a CA's signature or a key.
 */
function securityLevelRefusal (err: unknown, cert: Buffer, key: Buffer, certLabel: string): string | undefined {
  const code = (err as NodeJS.ErrnoException).code
  if (code === 'ERR_SSL_CA_MD_TOO_WEAK') {
    const weak = 'with a digest OpenSSL refuses at its security level (SHA-1 or MD5)'
    return leafRefused(cert, key, code)
      ? `${certLabel} is signed ${weak}: reissue it signed with SHA-256`
      : `${certLabel} holds an intermediate certificate signed ${weak}: have the chain reissued signed with SHA-256`
  }
  if (code === 'ERR_SSL_EE_KEY_TOO_SMALL') {
    return `${certLabel} has a key too small for OpenSSL's security level: reissue it with an RSA key of 2048 bits or more, or an EC key`
  }
  if (code === 'ERR_SSL_CA_KEY_TOO_SMALL') {
    return `${certLabel} holds an intermediate certificate whose key is too small for OpenSSL's security level: have the chain reissued with RSA keys of 2048 bits or more, or EC keys`
  }
  return undefined
}

// Whether the first certificate alone draws the same refusal: then it is the leaf to reissue, not a CA of the chain after it.
function leafRefused (cert: Buffer, key: Buffer, code: string): boolean {
  try {
    createSecureContext({ cert: new X509Certificate(cert).toString(), key })
    return false
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === code
  }
}

function parsePrivateKey (key: Buffer, label: string): KeyObject {
  try {
    return createPrivateKey(key)
  } catch (err) {
    // OpenSSL's error says so in some versions only (Node 20's: "interrupted or cancelled"); the PEM always does.
    const encrypted = /passphrase/i.test((err as Error).message) || /-----BEGIN ENCRYPTED PRIVATE KEY-----|\nProc-Type: 4,ENCRYPTED/.test(key.toString('latin1'))
    throw new CertificateError(`${label} is ${encrypted ? 'encrypted; give an unencrypted key' : 'not a PEM private key'}`)
  }
}

/**
 * Throws a one-line CertificateDatesError for a certificate that clients
 * would refuse by its dates: expired, or valid only from a time more than
 * CLOCK_SKEW_MS ahead. Serving it would look healthy to probes while every
 * client that checks dates, the agent among them, fails its handshake.
 */
export function assertInDates (x509: X509Certificate, label: string, now = Date.now()): void {
  const from = Date.parse(x509.validFrom)
  const to = Date.parse(x509.validTo)
  const dates = `valid from ${isoTime(from)} to ${isoTime(to)}, and this host's clock says ${isoTime(now)}`
  if (to < now) throw new CertificateDatesError(`${label} has expired: ${dates}`)
  if (from > now + CLOCK_SKEW_MS) throw new CertificateDatesError(`${label} is not valid yet: ${dates}; check the clocks, or wait`)
}

function isoTime (ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z')
}

/** Whether the certificate carries `host`: a DNS name, or an IP address, which only an IP entry matches. */
export function certificateNames (x509: X509Certificate, host: string): boolean {
  return isIP(host) === 0 ? x509.checkHost(host) !== undefined : x509.checkIP(host) !== undefined
}

export function reason (err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code
  if (code === 'ENOENT') return 'no such file or directory'
  if (code === 'ENOTDIR') return 'a part of the path is not a directory'
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied'
  if (code === 'EISDIR') return 'it is a directory'
  // OpenSSL's messages run to several lines; the first says what is wrong.
  return String((err as Error)?.message ?? err).split('\n', 1)[0]
}
