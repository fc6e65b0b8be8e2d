import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generate } from 'selfsigned'
import { createSecureContext } from 'node:tls'
import t from 'tap'
import { parseServeArgs } from '../../lib/cli/serve-args'
import { checkPair } from '../../lib/server/certificate-checks'
import { buildProblem, runCli } from '../helpers/cli'

/*
 * Certificates OpenSSL refuses at its security level, as private CAs of the
 * original relay's years issued them: signed with SHA-1 or MD5, or with small
 * RSA keys. The refusal names what to reissue, not a mismatch of the two
 * files (the key does match).
 */

type Options = NonNullable<Parameters<typeof generate>[1]>
interface Pem { cert: string, key: string }

const EC = { keyType: 'ec', curve: 'P-256' } as const
const CA_EXTENSIONS = [{ name: 'basicConstraints', cA: true, critical: true }, { name: 'keyUsage', keyCertSign: true, critical: true }]
const LEAF_EXTENSIONS = [{ name: 'basicConstraints', cA: false }, { name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }] }]

async function issue (name: string, options: Options, issuer?: Pem): Promise<Pem> {
  const pems = await generate([{ name: 'commonName', value: name }], { ...options, ...(issuer === undefined ? {} : { ca: issuer }) } as Options)
  return { cert: pems.cert, key: pems.private }
}

const ca = (name: string, options: Options = { ...EC, algorithm: 'sha256' }, issuer?: Pem): Promise<Pem> => issue(name, { ...options, extensions: CA_EXTENSIONS } as Options, issuer)
const leaf = (options: Options, issuer?: Pem): Promise<Pem> => issue('localhost', { ...options, extensions: LEAF_EXTENSIONS } as Options, issuer)

function hasOpenssl (): boolean {
  return spawnSync('openssl', ['version']).status === 0
}

// A 2048-bit RSA leaf after its issuer, an intermediate with a 512-bit key, both in the returned cert.
function smallIntermediateChain (t: { teardown: (fn: () => void) => void }): Pem {
  const dir = mkdtempSync(join(tmpdir(), 'rendezvous-small-ca-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const openssl = (...args: string[]): void => { execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' }) }
  writeFileSync(join(dir, 'ca.ext'), 'basicConstraints=critical,CA:true\nkeyUsage=critical,keyCertSign\n')
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'root.key', '-out', 'root.pem', '-sha256', '-days', '2', '-subj', '/CN=test root')
  openssl('req', '-newkey', 'rsa:512', '-nodes', '-keyout', 'int.key', '-out', 'int.csr', '-subj', '/CN=small intermediate')
  openssl('x509', '-req', '-in', 'int.csr', '-CA', 'root.pem', '-CAkey', 'root.key', '-set_serial', '2', '-out', 'int.pem', '-sha256', '-days', '2', '-extfile', 'ca.ext')
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', '/CN=localhost')
  openssl('x509', '-req', '-in', 'leaf.csr', '-CA', 'int.pem', '-CAkey', 'int.key', '-set_serial', '3', '-out', 'leaf.pem', '-sha256', '-days', '2')
  const read = (name: string): string => readFileSync(join(dir, name), 'utf8')
  return { cert: read('leaf.pem') + read('int.pem'), key: read('leaf.key') }
}

const labels = { certLabel: '--tls-cert cert.pem', keyLabel: '--tls-key key.pem' }
const check = (cert: string, key: string): void => { checkPair(Buffer.from(cert), Buffer.from(key), labels) }

/**
 * Whether this Node's OpenSSL refuses a leaf a CA signed with SHA-1 at all:
 * some builds (Node 22's) take one, and then there is nothing to name.
 */
async function weakDigestsRefused (root: Pem): Promise<string | false> {
  const pair = await leaf({ ...EC, algorithm: 'sha1' }, root)
  try {
    createSecureContext({ cert: pair.cert, key: pair.key })
    return `this Node's OpenSSL (${process.versions.openssl}) accepts a certificate signed with SHA-1`
  } catch {
    return false
  }
}

const WEAK_DIGEST = /^--tls-cert cert\.pem is signed with a digest OpenSSL refuses at its security level \(SHA-1 or MD5\): reissue it signed with SHA-256$/

t.test('checkPair names what OpenSSL refuses at its security level', async t => {
  const root = await ca('test root')
  const skip = await weakDigestsRefused(root)

  t.test('a leaf signed with SHA-1 by a CA: the certificate to reissue, not a mismatch', { skip }, async t => {
    const pair = await leaf({ ...EC, algorithm: 'sha1' }, root)
    t.throws(() => check(pair.cert, pair.key), { code: 'FST_RENDEZVOUS_CERTIFICATE', message: WEAK_DIGEST })
  })

  t.test('a leaf signed with MD5 by a CA', { skip }, async t => {
    const pair = await leaf({ ...EC, algorithm: 'md5' }, root)
    t.throws(() => check(pair.cert, pair.key), { code: 'FST_RENDEZVOUS_CERTIFICATE', message: WEAK_DIGEST })
  })

  t.test('a SHA-256 leaf after a SHA-1 intermediate in the same file: the intermediate', { skip }, async t => {
    const intermediate = await ca('test intermediate', { ...EC, algorithm: 'sha1' }, root)
    const pair = await leaf({ ...EC, algorithm: 'sha256' }, intermediate)
    t.throws(() => check(pair.cert + '\n' + intermediate.cert, pair.key), {
      code: 'FST_RENDEZVOUS_CERTIFICATE',
      message: /^--tls-cert cert\.pem holds an intermediate certificate signed with a digest OpenSSL refuses at its security level \(SHA-1 or MD5\): have the chain reissued signed with SHA-256$/
    })
  })

  t.test('a leaf with a 512-bit RSA key', async t => {
    const pair = await leaf({ keyType: 'rsa', keySize: 512, algorithm: 'sha256' })
    t.throws(() => check(pair.cert, pair.key), {
      code: 'FST_RENDEZVOUS_CERTIFICATE',
      message: /^--tls-cert cert\.pem has a key too small for OpenSSL's security level: reissue it with an RSA key of 2048 bits or more, or an EC key$/
    })
  })

  // selfsigned cannot sign with a 512-bit key (WebCrypto will not import it): the openssl command line does.
  t.test('an intermediate with a 512-bit RSA key in the same file', { skip: hasOpenssl() ? false : 'no openssl command' }, async t => {
    const pair = smallIntermediateChain(t)
    t.throws(() => check(pair.cert, pair.key), {
      code: 'FST_RENDEZVOUS_CERTIFICATE',
      message: /^--tls-cert cert\.pem holds an intermediate certificate whose key is too small for OpenSSL's security level: have the chain reissued with RSA keys of 2048 bits or more, or EC keys$/
    })
  })

  t.test('the same CA signing with SHA-256 passes, and so does a SHA-1 self-signed certificate, whose own signature OpenSSL does not check', async t => {
    const pair = await leaf({ ...EC, algorithm: 'sha256' }, root)
    t.doesNotThrow(() => check(pair.cert, pair.key))
    const selfSigned = await leaf({ ...EC, algorithm: 'sha1' })
    t.doesNotThrow(() => check(selfSigned.cert, selfSigned.key))
  })
})

t.test('serve and its cluster flags say so in one line', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'rendezvous-security-level-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const root = await ca('test root')
  const skip = await weakDigestsRefused(root)
  const pair = await leaf({ ...EC, algorithm: 'sha1' }, root)
  const certPath = join(dir, 'leaf-sha1.pem')
  const keyPath = join(dir, 'leaf.key')
  const caPath = join(dir, 'ca.pem')
  writeFileSync(certPath, pair.cert)
  writeFileSync(keyPath, pair.key, { mode: 0o600 })
  writeFileSync(caPath, root.cert)

  t.test('--peer-tls-cert, checked by the same function', { skip }, async t => {
    const flags = ['--redis', 'redis://127.0.0.1:1', '--cluster-secret', 'a cluster secret for the tests', '--peer-tls-cert', certPath, '--peer-tls-key', keyPath, '--peer-ca', caPath, '--peer-tls-name', 'localhost']
    t.throws(() => parseServeArgs(flags, {}), { message: /^--peer-tls-cert \S+leaf-sha1\.pem is signed with a digest OpenSSL refuses at its security level \(SHA-1 or MD5\): reissue it signed with SHA-256$/ })
  })

  t.test('the built CLI: serve --tls-cert exits 1 with the reason on stderr', { skip: skip !== false ? skip : buildProblem(t) ?? false }, async t => {
    const res = await runCli(t, ['serve', '--port', '0', '--data-dir', join(dir, 'data'), '--tls-cert', certPath, '--tls-key', keyPath])
    t.equal(res.code, 1)
    t.equal(res.stderr, `rendezvous: --tls-cert ${certPath} is signed with a digest OpenSSL refuses at its security level (SHA-1 or MD5): reissue it signed with SHA-256\n`)
    t.notMatch(res.stdout, /listening on/)
  })
})
