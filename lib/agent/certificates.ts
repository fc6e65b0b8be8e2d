import { X509Certificate } from 'node:crypto'
import type * as tls from 'node:tls'

/** What was wrong with the rendezvous certificate, in the words an operator acts on. */
export type CertificateProblem = 'unknown_issuer' | 'name_mismatch' | 'expired' | 'not_yet_valid' | 'other'

/** The rendezvous presented a certificate this agent does not accept. The CONNECT (and so the token) was never sent. */
export class RendezvousCertificateError extends Error {
  readonly code = 'RENDEZVOUS_CERTIFICATE_REJECTED'
  readonly problem: CertificateProblem
  /** OpenSSL's or Node's code, e.g. CERT_NOT_YET_VALID. */
  readonly reason: string
  /** SHA-256 fingerprint of the certificate the server presented. */
  readonly presented: string
  /** SHA-256 fingerprints of the trusted `ca` certificates; empty when the system's CAs are used. */
  readonly expected: string[]

  constructor (message: string, details: { problem: CertificateProblem, reason: string, presented: string, expected: string[] }) {
    super(message)
    this.name = 'RendezvousCertificateError'
    this.problem = details.problem
    this.reason = details.reason
    this.presented = details.presented
    this.expected = details.expected
  }
}

const PROBLEMS: Record<string, CertificateProblem> = {
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'unknown_issuer',
  UNABLE_TO_GET_ISSUER_CERT: 'unknown_issuer',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'unknown_issuer',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'unknown_issuer',
  SELF_SIGNED_CERT_IN_CHAIN: 'unknown_issuer',
  CERT_SIGNATURE_FAILURE: 'unknown_issuer',
  ERR_TLS_CERT_ALTNAME_INVALID: 'name_mismatch',
  HOSTNAME_MISMATCH: 'name_mismatch',
  IP_ADDRESS_MISMATCH: 'name_mismatch',
  CERT_HAS_EXPIRED: 'expired',
  CERT_NOT_YET_VALID: 'not_yet_valid'
}

/** The problem a verification error code names (Node's or OpenSSL's, e.g. DEPTH_ZERO_SELF_SIGNED_CERT); undefined for any other code. */
export function certificateProblem (code: string): CertificateProblem | undefined {
  return Object.hasOwn(PROBLEMS, code) ? PROBLEMS[code] : undefined
}

/** The certificates of a PEM bundle; throws a one-line Error when it holds none (garbage, or a private key). */
export function parseCaBundle (pem: string | Buffer, label = 'ca'): X509Certificate[] {
  const text = Buffer.isBuffer(pem) ? pem.toString('latin1') : pem
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? []
  const certs: X509Certificate[] = []
  for (const block of blocks) {
    try {
      certs.push(new X509Certificate(block))
    } catch {
      throw new Error(`${label} holds a damaged certificate`)
    }
  }
  if (certs.length === 0) {
    const what = /PRIVATE KEY-----/.test(text) ? 'a private key, not a certificate: give the server\'s certificate (cert.pem)' : 'no PEM certificate'
    throw new Error(`${label} holds ${what}`)
  }
  return certs
}

/**
 * The certificates of the `ca` option, each one apart; throws when one of its
 * entries holds none. Handing OpenSSL these rather than the caller's text
 * makes it trust exactly the certificates an error lists as expected: its
 * PEM reader stops at a certificate glued to the previous one's END line,
 * as `cat old.pem new.pem` makes of files without a final newline (serve's
 * generated cert.pem among them).
 */
export function caCertificates (ca: tls.SecureContextOptions['ca'], label = 'ca'): X509Certificate[] | undefined {
  if (ca === undefined) return undefined
  const entries = Array.isArray(ca) ? ca : [ca]
  return entries.flatMap((entry) => parseCaBundle(entry, label))
}

/**
 * The TLS options that trust `ca` (and, without it, the system's CAs). Each
 * certificate of the bundle is a trust anchor of its own, as with curl's
 * --cacert: OpenSSL otherwise looks an anchor up by subject name and tries
 * only the first of several with the same one, so of an old and a new
 * self-signed certificate of one server (same subject, no key identifiers,
 * as serve makes them) only one would be accepted. The presented chain must
 * still end in one of these very certificates, and its name and dates are
 * checked as before.
 */
export function trustOptions (ca: tls.SecureContextOptions['ca']): Pick<tls.SecureContextOptions, 'ca' | 'allowPartialTrustChain'> {
  return ca === undefined ? {} : { ca, allowPartialTrustChain: true }
}

/** Why `socket` (handshake done, not authorized) is refused, as an error that says what to do. */
export function rejection (socket: tls.TLSSocket, host: string, expected: string[]): RendezvousCertificateError {
  const reason = String(socket.authorizationError ?? 'UNKNOWN')
  const problem = PROBLEMS[reason] ?? 'other'
  const peer = socket.getPeerCertificate()
  const presented = typeof peer?.fingerprint256 === 'string' ? peer.fingerprint256 : 'none'
  const trusted = expected.length === 0 ? 'a CA this system trusts' : `${expected.join(', ')} (--ca)`
  const what = advice(problem, reason, host, peer, expected.length > 0)
  const message = `the rendezvous certificate is rejected: ${what}; it presented SHA-256 ${presented}, expected ${trusted}`
  return new RendezvousCertificateError(message, { problem, reason, presented, expected })
}

function advice (problem: CertificateProblem, reason: string, host: string, peer: tls.PeerCertificate | undefined, withCa: boolean): string {
  switch (problem) {
    case 'unknown_issuer':
      return withCa
        ? `unknown issuer (${reason}): it is not the --ca certificate (the library's ca option) nor signed by it; if the server made a new certificate, copy the new one`
        : `unknown issuer (${reason}): give the rendezvous certificate or its CA with --ca FILE (the library's ca option)`
    case 'name_mismatch':
      return `it does not name ${host} (it names ${peer?.subjectaltname ?? 'nothing usable'}): use a --server name it carries (the library's url option), or have the server present one that names it (serve --tls-name ${host} when serve generates its certificate; a --tls-cert of its own must carry the name)`
    case 'expired':
      return `expired on ${peer?.valid_to ?? '?'}; the server must renew it (or this machine's clock is wrong: it reads ${new Date().toISOString()})`
    case 'not_yet_valid':
      return `not valid before ${peer?.valid_from ?? '?'}: check this machine's clock, it reads ${new Date().toISOString()}`
    default:
      return reason
  }
}
