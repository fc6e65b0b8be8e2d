import { X509Certificate } from 'node:crypto'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { loadCertificate } from '../../lib/server/certificate'
import { tlsCertPath, tlsKeyPath } from '../helpers/tls'

type Test = Parameters<Parameters<typeof t.test>[0]>[0]

function tempDir (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'rendezvous-certificate-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

t.test('concurrent first starts settle on one certificate', async t => {
  const dataDir = join(tempDir(t), 'data')
  const [a, b] = await Promise.all([loadCertificate({ dataDir, host: '127.0.0.1' }), loadCertificate({ dataDir, host: '127.0.0.1' })])
  t.equal(a.fingerprint, b.fingerprint)
  t.equal(a.fingerprint, new X509Certificate(readFileSync(join(dataDir, 'tls', 'cert.pem'))).fingerprint256)
  t.same(readdirSync(dataDir), ['tls'], 'no staging directory left behind')
})

t.test('the generated certificate names --host as well as the loopback names', async t => {
  const cert = await loadCertificate({ dataDir: tempDir(t), host: 'relay.example.test' })
  const x509 = new X509Certificate(cert.cert)
  t.equal(x509.checkHost('relay.example.test'), 'relay.example.test')
  t.equal(x509.checkHost('localhost'), 'localhost')
  t.equal(x509.checkIP('127.0.0.1'), '127.0.0.1')
  t.ok(x509.checkIP('::1'))
  t.same(cert.warnings, [])
  t.ok(cert.selfSigned && cert.generated)
})

t.test('a certificate that does not name --host is served with a warning', async t => {
  const cert = await loadCertificate({ dataDir: tempDir(t), host: 'relay.example.test', certFile: tlsCertPath, keyFile: tlsKeyPath })
  t.match(cert.warnings, [/does not name relay\.example\.test/])
  t.notOk(cert.generated)
})

t.test('a data dir with a key and no certificate is refused, not silently replaced', async t => {
  const dataDir = tempDir(t)
  mkdirSync(join(dataDir, 'tls'))
  writeFileSync(join(dataDir, 'tls', 'key.pem'), readFileSync(tlsKeyPath))
  await t.rejects(loadCertificate({ dataDir, host: '127.0.0.1' }), { code: 'FST_RENDEZVOUS_CERTIFICATE', message: /holds only one of cert\.pem and key\.pem/ })
  t.same(readdirSync(join(dataDir, 'tls')), ['key.pem'])
})
