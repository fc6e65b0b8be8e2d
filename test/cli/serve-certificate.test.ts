import { X509Certificate } from 'node:crypto'
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import tls from 'node:tls'
import t from 'tap'
import { loadCertificate } from '../../lib/server/certificate'
import { buildProblem, startCli } from '../helpers/cli'
import { sample } from '../helpers/prometheus'
import { until } from '../helpers/until'
import { otherCertPath, otherKeyPath, tlsCertPath, tlsKeyPath } from '../helpers/tls'

type Test = Parameters<Parameters<typeof t.test>[0]>[0]

const FINGERPRINT = /SHA-256 fingerprint\s+([0-9A-F]{2}(?::[0-9A-F]{2}){31})/

function tempDir (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'rendezvous-cert-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** The fingerprint the server presents to a TLS client at host:port (verified against `ca` when given). */
function presented (host: string, port: number, opts: { ca?: Buffer, servername?: string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host, port, ca: opts.ca, servername: opts.servername, rejectUnauthorized: opts.ca !== undefined }, () => {
      resolve(socket.getPeerCertificate().fingerprint256)
      socket.destroy()
    })
    socket.on('error', reject)
  })
}

const fingerprintOf = (file: string): string => new X509Certificate(readFileSync(file)).fingerprint256

t.test('the generated certificate carries each --tls-name, and is made again when the names change', async t => {
  const dataDir = tempDir(t)
  const first = await loadCertificate({ dataDir, host: '0.0.0.0', names: ['relay.example.test', '192.0.2.7'] })
  const x509 = new X509Certificate(first.cert)
  t.equal(x509.checkHost('relay.example.test'), 'relay.example.test')
  t.equal(x509.checkIP('192.0.2.7'), '192.0.2.7')
  t.equal(x509.checkIP('127.0.0.1'), '127.0.0.1')
  t.notOk(x509.checkIP('0.0.0.0'), 'a wildcard --host is no name')
  t.ok(first.generated)

  const again = await loadCertificate({ dataDir, host: '0.0.0.0', names: ['relay.example.test', '192.0.2.7'] })
  t.equal(again.fingerprint, first.fingerprint, 'same names: the same certificate')
  t.notOk(again.generated)

  const more = await loadCertificate({ dataDir, host: '127.0.0.2', names: ['relay.example.test', '192.0.2.7'] })
  t.not(more.fingerprint, first.fingerprint, 'a concrete --host is a new name')
  t.match(more.regenerated, /did not name 127\.0\.0\.2/)
  t.ok(new X509Certificate(more.cert).checkIP('127.0.0.2'))
  t.equal(fingerprintOf(join(dataDir, 'tls', 'cert.pem')), first.fingerprint, 'not on disk until it is saved')
  await more.save?.()
  t.equal(fingerprintOf(join(dataDir, 'tls', 'cert.pem')), more.fingerprint, 'on disk once saved')

  const fewer = await loadCertificate({ dataDir, host: '127.0.0.2', names: [] })
  t.not(fewer.fingerprint, more.fingerprint, 'a name taken away makes a new one too')
  t.match(fewer.regenerated, /names changed/)
  t.notOk(new X509Certificate(fewer.cert).checkHost('relay.example.test'))
  await fewer.save?.()
  t.equal(fingerprintOf(join(dataDir, 'tls', 'cert.pem')), fewer.fingerprint, 'and it is the one on disk')
})

t.test('the names of a certificate read as people write them: IPv6 addresses short', async t => {
  const generated = await loadCertificate({ dataDir: tempDir(t), host: '127.0.0.1', names: ['2001:DB8:0:0:1:0:0:A', 'fe80::1'] })
  t.same(generated.names, ['localhost', '127.0.0.1', '::1', '2001:db8::1:0:0:a', 'fe80::1'])
  t.ok(new X509Certificate(generated.cert).checkIP('2001:db8::1:0:0:a'), 'the certificate carries the address itself')
})

t.test('serve --tls-name: banner prints names and fingerprint, and clients verify by those names', async t => {
  const problem = buildProblem(t)
  if (problem !== undefined) return t.fail(problem)
  const dataDir = tempDir(t)
  const serve = startCli(t, ['serve', '--host', '127.0.0.2', '--port', '0', '--data-dir', dataDir, '--tls-name', 'relay.example.test'])
  const [, port] = await serve.waitFor(/listening on https:\/\/127\.0\.0\.2:(\d+)\//)
  const [, fingerprint] = await serve.waitFor(FINGERPRINT)
  t.match(serve.stdout(), /names {8}localhost, 127\.0\.0\.1, ::1, 127\.0\.0\.2, relay\.example\.test\n/, 'IPv6 as the docs write it, not 0:0:0:0:0:0:0:1')
  const ca = readFileSync(join(dataDir, 'tls', 'cert.pem'))
  t.equal(await presented('127.0.0.2', Number(port), { ca, servername: 'relay.example.test' }), fingerprint)
  t.equal(await presented('127.0.0.2', Number(port), { ca }), fingerprint, 'the --host IP verifies too')
  t.equal((await serve.stop('SIGTERM')).code, 0)
})

t.test('a start that fails leaves the generated certificate of a running serve alone', async t => {
  const problem = buildProblem(t)
  if (problem !== undefined) return t.fail(problem)
  const dataDir = tempDir(t)
  const first = startCli(t, ['serve', '--port', '0', '--data-dir', dataDir])
  const [, port] = await first.waitFor(/listening on https:\/\/127\.0\.0\.1:(\d+)\//)
  const [, fingerprint] = await first.waitFor(FINGERPRINT)
  const certFile = join(dataDir, 'tls', 'cert.pem')
  // Other names would make a new certificate; the port in use makes this start fail.
  const second = startCli(t, ['serve', '--port', port, '--data-dir', dataDir, '--tls-name', 'other.example.test'])
  const exit = await second.exited
  t.equal(exit.code, 1, 'the second start fails')
  t.match(second.output(), /port is already in use/)
  t.equal(fingerprintOf(certFile), fingerprint, 'the certificate on disk is still the one the first serve presents')
  t.equal(await presented('127.0.0.1', Number(port), { ca: readFileSync(certFile) }), fingerprint, 'and clients given that file as CA still verify it')
  t.equal((await first.stop('SIGTERM')).code, 0)
})

/** Serves the fixture's certificate from copies of its files in a fresh directory, which the test may overwrite. */
function serveCopies (t: Test, extra: string[] = []): { dir: string, cert: string, key: string, serve: ReturnType<typeof startCli> } {
  const dir = tempDir(t)
  const cert = join(dir, 'fullchain.pem')
  const key = join(dir, 'privkey.pem')
  copyFileSync(tlsCertPath, cert)
  copyFileSync(tlsKeyPath, key)
  const serve = startCli(t, ['serve', '--port', '0', '--data-dir', join(dir, 'data'), '--tls-cert', cert, '--tls-key', key, ...extra])
  return { dir, cert, key, serve }
}

t.test('a given certificate is reloaded on SIGHUP and when its files change', async t => {
  const problem = buildProblem(t)
  if (problem !== undefined) return t.fail(problem)
  const { cert, key, serve } = serveCopies(t)
  const [, port] = await serve.waitFor(/listening on https:\/\/127\.0\.0\.1:(\d+)\//)
  const fixture = fingerprintOf(tlsCertPath)
  const other = fingerprintOf(otherCertPath)
  t.equal(await presented('127.0.0.1', Number(port)), fixture)

  // Written key first, then certificate, as a renewal might: the half-written state must not take.
  copyFileSync(otherKeyPath, key)
  copyFileSync(otherCertPath, cert)
  serve.child.kill('SIGHUP')
  await serve.waitFor(/certificate reloaded/, 10_000)
  t.equal(await presented('127.0.0.1', Number(port)), other, 'SIGHUP: new connections get the new certificate')

  copyFileSync(tlsKeyPath, key)
  copyFileSync(tlsCertPath, cert)
  const deadline = Date.now() + 20_000
  let now = other
  while (now !== fixture && Date.now() < deadline) {
    await new Promise(resolve => setTimeout(resolve, 250))
    now = await presented('127.0.0.1', Number(port))
  }
  t.equal(now, fixture, 'a file change alone is enough')
  t.equal((await serve.stop('SIGTERM')).code, 0, 'still running, and closes cleanly')
})

const notAfter = (cert: Buffer): number => Date.parse(new X509Certificate(cert).validTo) / 1000

t.test('serve counts certificate reloads by result, and exposes when the presented certificate expires', async t => {
  const problem = buildProblem(t)
  if (problem !== undefined) return t.fail(problem)
  const { dir, cert, key, serve } = serveCopies(t, ['--metrics-listen', '127.0.0.1:0'])
  // A renewal whose notAfter differs from the fixture's.
  const renewed = await loadCertificate({ dataDir: join(dir, 'renewed'), host: '127.0.0.1', names: [] })
  const [, metricsUrl] = await serve.waitFor(/Metrics: (http:\/\/127\.0\.0\.1:\d+\/metrics)/)
  const scrape = async (): Promise<string> => await (await fetch(metricsUrl)).text()
  const expiry = 'rendezvous_tls_certificate_expiry_timestamp_seconds{listener="public"}'
  const reloads = (result: string): string => `rendezvous_tls_reloads_total{listener="public",result="${result}"}`

  let text = await scrape()
  t.equal(sample(text, expiry), notAfter(readFileSync(tlsCertPath)), 'the expiry of the certificate it started with')
  t.equal(sample(text, reloads('reloaded')), undefined, 'no reload yet')
  t.notMatch(text, /listener="peer"/, 'no peer link, no peer series')

  serve.child.kill('SIGHUP')
  await until(async () => sample(await scrape(), reloads('unchanged')) === 1, 10_000, 'an unchanged reload')

  // The fixture's certificate with another key: the check fails and the current pair stays.
  copyFileSync(otherKeyPath, key)
  serve.child.kill('SIGHUP')
  await until(async () => (sample(await scrape(), reloads('failed')) ?? 0) >= 1, 10_000, 'a failed reload')
  t.equal(sample(await scrape(), expiry), notAfter(readFileSync(tlsCertPath)), 'a failed reload leaves the expiry as it was')

  copyFileSync(join(dir, 'renewed', 'tls', 'key.pem'), key)
  copyFileSync(join(dir, 'renewed', 'tls', 'cert.pem'), cert)
  serve.child.kill('SIGHUP')
  await until(async () => sample(await scrape(), reloads('reloaded')) === 1, 10_000, 'the renewal to load')
  text = await scrape()
  t.equal(sample(text, expiry), notAfter(renewed.cert), 'the expiry follows the renewed certificate')
  t.not(notAfter(renewed.cert), notAfter(readFileSync(tlsCertPath)))
  t.equal((await serve.stop('SIGTERM')).code, 0)
})

t.test('--tls-name refuses what is no name, and what it cannot apply to', async t => {
  const problem = buildProblem(t)
  if (problem !== undefined) return t.fail(problem)
  for (const [args, pattern] of [
    [['--tls-name', 'not a name'], /--tls-name must be a DNS name or an IP address, got "not a name"/],
    [['--tls-name', 'x.test', '--no-tls'], /--tls-name names the generated certificate; it cannot be combined with --no-tls/]
  ] as Array<[string[], RegExp]>) {
    const serve = startCli(t, ['serve', '--port', '0', '--data-dir', tempDir(t), ...args])
    const exit = await serve.exited
    t.equal(exit.code, 2)
    t.match(serve.stderr(), pattern)
  }
})
