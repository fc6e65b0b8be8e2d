import type { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { parseCaBundle } from '../agent/certificates'
import { assertInDates, certificateNames, checkPair } from '../server/certificate-checks'
import type { PeerTlsMaterial } from '../server/serve-options'
import { CliError } from './cli-error'
import { NotAllowed } from './config'

/** The peer TLS flags as resolved (flag > env > file). */
export interface PeerTlsValues {
  cert?: string
  key?: string
  ca?: string
  name?: string
}

/**
 * `--peer-tls-cert FILE --peer-tls-key FILE --peer-ca FILE [--peer-tls-name NAME]`
 * (docs/cluster.md, The peer link): all three files or none, since the link
 * is mutual TLS, each node both serving and presenting its certificate.
 * `verifyHost` is the host other nodes dial (that of --advertise), which
 * they verify the certificate against unless --peer-tls-name is given.
 * Messages name the files, never their content.
 */
export function peerTlsArgs (v: PeerTlsValues, verifyHost: string): PeerTlsMaterial | undefined {
  if (v.cert === undefined && v.key === undefined && v.ca === undefined) {
    if (v.name !== undefined) throw new CliError('--peer-tls-name needs --peer-tls-cert, --peer-tls-key and --peer-ca')
    return undefined
  }
  if (v.cert === undefined) throw new CliError(v.key === undefined ? '--peer-ca needs --peer-tls-cert and --peer-tls-key: the peer link is mutual TLS' : '--peer-tls-key needs --peer-tls-cert')
  if (v.key === undefined) throw new CliError('--peer-tls-cert needs --peer-tls-key')
  if (v.ca === undefined) throw new CliError('--peer-tls-cert needs --peer-ca, the CA that signs the peer certificates of every node')
  const certLabel = `--peer-tls-cert ${v.cert}`
  const keyLabel = `--peer-tls-key ${v.key}`
  const caLabel = `--peer-ca ${v.ca}`
  const cert = readPemFile(v.cert, certLabel)
  const key = readPemFile(v.key, keyLabel)
  const ca = readPemFile(v.ca, caLabel)
  const chain = certificates(cert, `${certLabel} is not a PEM certificate`)
  const authorities = certificates(ca, `${caLabel} holds no PEM certificate`)
  try {
    checkPair(cert, key, { certLabel, keyLabel })
  } catch (err) {
    // The cause tells a reload that the renewal is half-written (logRefusal).
    throw Object.assign(new CliError((err as Error).message), { cause: err })
  }
  try {
    // The other nodes check dates as any TLS client does: every link would fail its handshake while this node looked healthy.
    assertInDates(chain[0], certLabel)
  } catch (err) {
    throw Object.assign(new CliError((err as Error).message), { cause: err })
  }
  if (!signedBy(chain, authorities)) throw new CliError(`${certLabel} is not signed by ${caLabel}: the other nodes would refuse it`)
  const name = v.name ?? verifyHost
  if (!certificateNames(chain[0], name.replace(/^\[(.*)\]$/, '$1'))) {
    const which = v.name === undefined ? `${name}, the host other nodes dial (--advertise); add it to the certificate or give --peer-tls-name` : `${name} (--peer-tls-name)`
    throw new CliError(`${certLabel} does not name ${which}`)
  }
  return { cert, key, ca, ...(v.name === undefined ? {} : { name: v.name }) }
}

/** A --peer-tls-name: one DNS name, which the TLS client sends as SNI and checks; not an IP address, as SNI cannot carry one. */
export function peerTlsName (raw: string): string {
  const dns = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*$/
  if (isIP(raw) !== 0 || raw.length > 253 || !dns.test(raw)) throw new NotAllowed('a DNS name (an IP address in --advertise is verified without it)')
  return raw.toLowerCase()
}

function readPemFile (file: string, label: string): Buffer {
  try {
    return readFileSync(file)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new CliError(`${label}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : 'cannot be read'}`)
  }
}

// The same PEM reading as the agent's --ca; the message here names the flag.
function certificates (pem: Buffer, problem: string): X509Certificate[] {
  try {
    return parseCaBundle(pem)
  } catch {
    throw new CliError(problem)
  }
}

// Some certificate of the chain is one of the authorities or issued by one: what another node can verify with --peer-ca alone.
function signedBy (chain: X509Certificate[], authorities: X509Certificate[]): boolean {
  return chain.some(c => authorities.some(a => a.fingerprint256 === c.fingerprint256 || (c.checkIssued(a) && c.verify(a.publicKey))))
}
