import { X509Certificate } from 'node:crypto'
import { once } from 'node:events'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import tls from 'node:tls'
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
  writeFileSync(join(dataDir, 'tls', 'key.pem'), readFileSync(tlsKeyPath), { mode: 0o600 })
  await t.rejects(loadCertificate({ dataDir, host: '127.0.0.1' }), { code: 'FST_RENDEZVOUS_CERTIFICATE', message: /holds only one of cert\.pem and key\.pem/ })
  t.same(readdirSync(join(dataDir, 'tls')), ['key.pem'])
})

t.test('generated files end with a newline, so `cat old.pem new.pem` is a bundle of two that OpenSSL reads', async t => {
  const old = await loadCertificate({ dataDir: tempDir(t), host: '127.0.0.1' })
  const renewed = await loadCertificate({ dataDir: tempDir(t), host: '127.0.0.1' })
  for (const file of [old.cert, old.key]) t.equal(file.subarray(-1).toString(), '\n')
  const bundle = Buffer.concat([readFileSync(old.certPath), readFileSync(renewed.certPath)])
  // The second certificate, presented by a real server, is trusted from the cat'ed file.
  const server = tls.createServer({ cert: renewed.cert, key: renewed.key }, socket => socket.end())
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  const socket = tls.connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, ca: bundle, allowPartialTrustChain: true, rejectUnauthorized: false })
  await once(socket, 'secureConnect')
  t.equal(socket.authorizationError, null, 'no verification error')
  t.ok(socket.authorized)
  socket.destroy()
})
