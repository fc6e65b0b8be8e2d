import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { generate } from 'selfsigned'

/** A small private CA and node certificates signed by it, as docs/cluster.md tells operators to make with openssl. */
export interface TestCa { cert: string, key: string }
export interface PeerFiles { cert: string, key: string, ca: string }

type Options = Parameters<typeof generate>[1]

const base = (days = 1, keyType: 'ec' | 'rsa' = 'ec', notBeforeDate = new Date(Date.now() - 60_000)): Options => {
  const key = keyType === 'ec' ? { keyType, curve: 'P-256' } : { keyType, keySize: 2048 }
  return { ...key, algorithm: 'sha256', notBeforeDate, notAfterDate: new Date(notBeforeDate.getTime() + days * 86_400_000) } as Options
}

/** selfsigned signs with the CA's key as if it were of the node's type: an RSA node needs an RSA CA. */
export async function makeCa (name: string, keyType: 'ec' | 'rsa' = 'ec'): Promise<TestCa> {
  const pems = await generate([{ name: 'commonName', value: name }], {
    ...base(1, keyType),
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true }
    ]
  } as Options)
  return { cert: pems.cert, key: pems.private }
}

/** A node certificate for both ends of the link (serverAuth and clientAuth), naming `dns` and, unless `ip` is false, 127.0.0.1; valid for `days` from `from` (a minute ago); an EC key unless `keyType` says RSA. */
export async function makeNodeCert (ca: TestCa, name: string, dns = 'peers.rendezvous.test', ip = true, days = 1, keyType: 'ec' | 'rsa' = 'ec', from?: Date): Promise<{ cert: string, key: string }> {
  const pems = await generate([{ name: 'commonName', value: name }], {
    ...base(days, keyType, from),
    ca,
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
      { name: 'subjectAltName', altNames: [...(ip ? [{ type: 7, ip: '127.0.0.1' }] : []), { type: 2, value: dns }] }
    ]
  } as Options)
  return { cert: pems.cert, key: pems.private }
}

/** Writes a node's pair and a CA into `dir` as `<prefix>-cert.pem`, `<prefix>-key.pem`, `<prefix>-ca.pem`. */
export async function writePeerFiles (dir: string, prefix: string, node: { cert: string, key: string }, trusted: TestCa): Promise<PeerFiles> {
  const files = { cert: join(dir, `${prefix}-cert.pem`), key: join(dir, `${prefix}-key.pem`), ca: join(dir, `${prefix}-ca.pem`) }
  await writeFile(files.cert, node.cert)
  await writeFile(files.key, node.key, { mode: 0o600 })
  await writeFile(files.ca, trusted.cert)
  return files
}

export const peerTlsFlags = (f: PeerFiles): string[] => ['--peer-tls-cert', f.cert, '--peer-tls-key', f.key, '--peer-ca', f.ca]
