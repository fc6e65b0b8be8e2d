import { X509Certificate, randomBytes } from 'node:crypto'
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { SocketAddress, isIP } from 'node:net'
import { join } from 'node:path'
import { generate } from 'selfsigned'
import { makeDir } from '../make-dir'
import { assertPrivateIfPresent } from '../registry/permissions'
import { assertInDates, certificateNames, checkPair, parseCertificate, reason, type Labels } from './certificate-checks'
import { CertificateDatesError, CertificateError, TlsFileError } from './errors'

export interface Certificate {
  cert: Buffer
  key: Buffer
  certPath: string
  /** SHA-256 of the DER certificate, upper-case hex pairs joined by colons. */
  fingerprint: string
  /** Whether clients need this very file as their CA: true for self-signed certificates. */
  selfSigned: boolean
  /** True when this start generated the certificate. */
  generated: boolean
  /** The DNS names and IP addresses it is valid for. */
  names: string[]
  /** Why an existing self-signed certificate is replaced on this start, if it is. */
  regenerated?: string
  /**
   * For a regenerated pair: writes it over the data dir's old one. Called
   * once the server listens, so a start that fails (a port in use) leaves
   * the certificate that a running server and its agents use alone.
   */
  save?: () => Promise<void>
  /** Things the operator should know, each one line. */
  warnings: string[]
}

export interface CertificateRequest {
  dataDir: string
  host: string
  certFile?: string
  keyFile?: string
  /** How messages name certFile and keyFile. Default: their paths. */
  certLabel?: string
  keyLabel?: string
  /** More names (DNS names or IP addresses) the generated certificate must carry, from --tls-name. */
  names?: string[]
  /**
   * Whether the data dir's self-signed pair may be generated (again) when it
   * is missing or no longer fits: at start only. A reload that did it would
   * change the fingerprint agents pin, unannounced. Default true.
   */
  generate?: boolean
}

const VALID_DAYS = 5 * 365
const WILDCARDS = new Set(['0.0.0.0', '::', '0:0:0:0:0:0:0:0'])

/** The certificate `serve` uses: the operator's pair, or the data dir's self-signed one, made on first start. */
export async function loadCertificate (req: CertificateRequest): Promise<Certificate> {
  if (req.certFile !== undefined && req.keyFile !== undefined) {
    const labels = { certLabel: req.certLabel ?? req.certFile, keyLabel: req.keyLabel ?? req.keyFile }
    const cert = await readPem(req.certFile, labels.certLabel)
    const key = await readPem(req.keyFile, labels.keyLabel)
    const given = describe(cert, key, req.certFile, labels, req.host, false)
    assertInDates(parseCertificate(cert, labels.certLabel), labels.certLabel)
    return given
  }
  const names = wantedNames(req.host, req.names ?? [])
  return req.generate === false ? await onDisk(req.dataDir, req.host, names) : await selfSigned(req.dataDir, req.host, names)
}

/**
 * The data dir's pair as it is, for a reload: one that no longer fits this
 * server (another server on the data dir, with other names, replaced it)
 * or is missing is refused, and the current one stays.
 */
async function onDisk (dataDir: string, host: string, names: string[]): Promise<Certificate> {
  const { dir, certPath, cert, key, labels } = await dataDirPair(dataDir)
  if (cert === undefined || key === undefined) {
    throw new CertificateError(`${dir} no longer holds cert.pem and key.pem; a reload does not generate a certificate (agents pin its fingerprint): restart to generate one`)
  }
  const current = describe(cert, key, certPath, labels, host, false)
  const stale = current.selfSigned ? staleness(cert, names) : undefined
  if (stale?.startsWith('it expired') === true) {
    throw new CertificateDatesError(`${certPath}: ${stale}; a reload does not generate a certificate (agents pin its fingerprint): restart to generate one`)
  }
  if (stale !== undefined) {
    throw new CertificateError(`${certPath} no longer fits this server: ${stale}. Another server on this data dir with other --host or --tls-name names replaced it? Give every server on one data dir the same names; a reload does not generate a certificate (agents pin its fingerprint)`)
  }
  return current
}

/** The names a generated certificate carries: the loopback names, a concrete --host, and each --tls-name. */
export function wantedNames (host: string, names: string[]): string[] {
  const all = new Set(['localhost', '127.0.0.1', '::1'])
  if (host !== '' && !WILDCARDS.has(host)) all.add(host.toLowerCase())
  for (const name of names) all.add(name.toLowerCase())
  return [...all]
}

/** The data dir's tls directory, judged (assertPrivateTls), and what it holds of the pair. */
async function dataDirPair (dataDir: string): Promise<{ dir: string, certPath: string, labels: Labels, cert?: Buffer, key?: Buffer }> {
  const dir = join(dataDir, 'tls')
  const certPath = join(dir, 'cert.pem')
  const keyPath = join(dir, 'key.pem')
  await assertPrivateTls(dataDir, dir, keyPath, certPath)
  return { dir, certPath, labels: { certLabel: certPath, keyLabel: keyPath }, cert: await readOptional(certPath), key: await readOptional(keyPath) }
}

async function selfSigned (dataDir: string, host: string, names: string[], retry = true): Promise<Certificate> {
  const { dir, certPath, cert, key, labels } = await dataDirPair(dataDir)
  if (cert !== undefined && key !== undefined) {
    const current = describe(cert, key, certPath, labels, host, false)
    const stale = current.selfSigned ? staleness(cert, names) : undefined
    if (stale === undefined || !retry) return current
    const pems = await generateSelfSigned(names)
    const save = async (): Promise<void> => {
      if (!await replace(dataDir, dir, pems)) {
        throw new CertificateError(`another start replaced ${dir} at the same moment; start again to serve the certificate on disk`)
      }
    }
    return { ...describe(Buffer.from(pems.cert), Buffer.from(pems.private), certPath, labels, host, true), regenerated: stale, save }
  }
  if (cert !== undefined || key !== undefined) {
    // Regenerating would silently change the fingerprint that agents may have pinned.
    throw new CertificateError(`${dir} holds only one of cert.pem and key.pem; restore the other or delete ${dir} to generate a new pair`)
  }
  const pems = await generateSelfSigned(names)
  if (!await publish(dataDir, dir, pems) && retry) {
    // Another server on this data dir published first; serving its pair keeps one fingerprint per data dir.
    return await selfSigned(dataDir, host, names, false)
  }
  return describe(Buffer.from(pems.cert), Buffer.from(pems.private), certPath, labels, host, true)
}

/**
 * The data dir's pair is the relay's identity, which agents pin: judged as
 * OpenSSH's StrictModes judge host keys. Whoever can write the data dir or
 * the tls dir can swap the pair; whoever can read the key can impersonate
 * the relay. Checked before anything is generated in them.
 */
async function assertPrivateTls (dataDir: string, dir: string, keyPath: string, certPath: string): Promise<void> {
  await assertPrivateIfPresent(dataDir, 'directory')
  await assertPrivateIfPresent(dir, 'directory')
  await assertPrivateIfPresent(keyPath, 'file', 'refuse')
  await assertPrivateIfPresent(certPath, 'file', 'allow')
}

/**
 * Moves a complete tls directory into place in one rename, so a crash or a
 * concurrent start never leaves a certificate without its key. Resolves
 * false when a tls directory with content got there first.
 */
async function publish (dataDir: string, dir: string, pems: { cert: string, private: string }): Promise<boolean> {
  await makeDirectory(dataDir)
  const staging = join(dataDir, `.tls-${process.pid}-${randomBytes(4).toString('hex')}`)
  try {
    await mkdir(staging, { mode: 0o700 })
    await writeFile(join(staging, 'key.pem'), pems.private, { mode: 0o600, flag: 'wx' })
    await writeFile(join(staging, 'cert.pem'), pems.cert, { mode: 0o644, flag: 'wx' })
    await rename(staging, dir)
    return true
  } catch (err) {
    await rm(staging, { recursive: true, force: true })
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOTEMPTY' || code === 'EEXIST') return false
    throw new TlsFileError(`cannot write ${dir}: ${reason(err)}`)
  }
}

// Why a generated certificate no longer fits: its names are not exactly the wanted ones, or it expired.
function staleness (pem: Buffer, names: string[]): string | undefined {
  const x509 = new X509Certificate(pem)
  const carried = (x509.subjectAltName ?? '').split(', ').filter(entry => entry !== '')
  const dns = new Set(carried.filter(entry => entry.startsWith('DNS:')).map(entry => entry.slice(4).toLowerCase()))
  const missing = names.filter(name => isIP(name) === 0 ? !dns.has(name) : x509.checkIP(name) === undefined)
  if (missing.length > 0) return `it did not name ${missing.join(', ')}`
  if (carried.length !== names.length) return 'its names changed'
  if (Date.parse(x509.validTo) < Date.now()) return `it expired on ${x509.validTo}`
  return undefined
}

/** Swaps a new pair in for the data dir's old one: each rename is atomic, so the pair never mixes. */
async function replace (dataDir: string, dir: string, pems: { cert: string, private: string }): Promise<boolean> {
  const old = join(dataDir, `.tls-old-${process.pid}-${randomBytes(4).toString('hex')}`)
  try {
    await rename(dir, old)
  } catch (err) {
    throw new CertificateError(`cannot replace ${dir}: ${reason(err)}`)
  }
  const published = await publish(dataDir, dir, pems)
  await rm(old, { recursive: true, force: true })
  return published
}

async function generateSelfSigned (names: string[]): Promise<{ cert: string, private: string }> {
  const altNames = names.map(name => isIP(name) === 0 ? { type: 2 as const, value: name } : { type: 7 as const, ip: name })
  const notBeforeDate = new Date(Date.now() - 60_000)
  const notAfterDate = new Date(notBeforeDate.getTime() + VALID_DAYS * 86_400_000)
  const pems = await generate([{ name: 'commonName', value: 'rendezvous' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate,
    notAfterDate,
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames }
    ]
  })
  // selfsigned ends its PEM without a newline: `cat old.pem new.pem` (an agent's
  // --ca for a switch of certificates) would glue the second to the first's END line.
  return { cert: endLine(pems.cert), private: endLine(pems.private) }
}

function endLine (pem: string): string {
  return pem.endsWith('\n') ? pem : pem + '\n'
}

function describe (cert: Buffer, key: Buffer, certPath: string, labels: Labels, host: string, generated: boolean): Certificate {
  const x509 = parseCertificate(cert, labels.certLabel)
  checkPair(cert, key, labels)
  const warnings: string[] = []
  if (Date.parse(x509.validTo) < Date.now()) warnings.push(`the certificate ${labels.certLabel} expired on ${x509.validTo}`)
  if (!namesHost(x509, host)) warnings.push(`the certificate ${labels.certLabel} does not name ${host}; clients that check it will refuse the connection`)
  // Not checkIssued: OpenSSL wants keyCertSign there, which a leaf like ours rightly lacks.
  const selfSigned = x509.subject === x509.issuer && x509.verify(x509.publicKey)
  const names = (x509.subjectAltName ?? '').split(', ').filter(entry => entry !== '').map(shownName)
  return { cert, key, certPath, fingerprint: x509.fingerprint256, names, selfSigned, generated, warnings }
}

// OpenSSL spells an IPv6 address out in full (0:0:0:0:0:0:0:1); the docs, --host and --tls-name write it short (::1).
function shownName (entry: string): string {
  const name = entry.replace(/^(DNS|IP Address):/, '')
  return entry.startsWith('IP Address:') && isIP(name) === 6 ? new SocketAddress({ address: name, family: 'ipv6' }).address : name
}

function namesHost (x509: X509Certificate, host: string): boolean {
  return host === '' || WILDCARDS.has(host) || certificateNames(x509, host)
}

async function readPem (file: string, label: string): Promise<Buffer> {
  try {
    return await readFile(file)
  } catch (err) {
    throw new TlsFileError(`cannot read ${label}: ${reason(err)}`)
  }
}

async function readOptional (file: string): Promise<Buffer | undefined> {
  try {
    return await readFile(file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new TlsFileError(`cannot read ${file}: ${reason(err)}`)
  }
}

async function makeDirectory (dir: string): Promise<void> {
  try {
    await makeDir(dir)
  } catch (err) {
    throw new TlsFileError(`cannot create ${dir}: ${reason(err)}`)
  }
}
