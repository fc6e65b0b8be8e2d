import { X509Certificate } from 'node:crypto'
import { once } from 'node:events'
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import tls from 'node:tls'
import type { FastifyBaseLogger } from 'fastify'
import t from 'tap'
import { loadCertificate } from '../../lib/server/certificate'
import { reloadCertificate } from '../../lib/server/certificate-reload'
import type { ReloadResult } from '../../lib/server/tls-metrics'
import { datedPair, days, minutes } from '../helpers/dated-certificate'

// A certificate outside its dates is refused at start and on reload, like a key that is not its own.

type Test = Parameters<Parameters<typeof t.test>[0]>[0]

const ISO = '\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ'

function tempDir (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'rendezvous-cert-dates-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

const given = (dir: string, pair: { certPath: string, keyPath: string }) => ({
  dataDir: join(dir, 'data'),
  host: '127.0.0.1',
  certFile: pair.certPath,
  keyFile: pair.keyPath,
  certLabel: `--tls-cert ${pair.certPath}`,
  keyLabel: `--tls-key ${pair.keyPath}`
})

t.test('an expired certificate is refused in one line naming the file and its dates', async t => {
  const dir = tempDir(t)
  const pair = await datedPair(dir, 'expired', days(-30), days(-1))
  const err = await loadCertificate(given(dir, pair)).then(() => undefined, (e: Error & { code?: string }) => e)
  t.equal(err?.code, 'FST_RENDEZVOUS_CERTIFICATE')
  t.match(err?.message, new RegExp(`^--tls-cert ${pair.certPath} has expired: valid from ${ISO} to ${ISO}, and this host's clock says ${ISO}$`))
  const x509 = new X509Certificate(pair.cert)
  t.match(err?.message, new Date(Date.parse(x509.validTo)).toISOString().slice(0, 19), 'the notAfter it names is the certificate\'s')
  t.notMatch(err?.message, /\n/, 'one line')
})

t.test('a certificate valid only from later than five minutes ahead is refused; one a little ahead is clock skew, and served', async t => {
  const dir = tempDir(t)
  const future = await datedPair(dir, 'future', days(2), days(30))
  await t.rejects(loadCertificate(given(dir, future)), {
    code: 'FST_RENDEZVOUS_CERTIFICATE',
    message: new RegExp(`^--tls-cert ${future.certPath} is not valid yet: valid from ${ISO} to ${ISO}, and this host's clock says ${ISO}; check the clocks, or wait$`)
  })
  const sixMinutes = await datedPair(dir, 'six', minutes(6), days(30))
  await t.rejects(loadCertificate(given(dir, sixMinutes)), { message: /is not valid yet/ })
  const skewed = await datedPair(dir, 'skewed', minutes(3), days(30))
  const cert = await loadCertificate(given(dir, skewed))
  t.same(cert.warnings, [])
  t.equal(cert.fingerprint, new X509Certificate(skewed.cert).fingerprint256)
})

t.test('the data dir\'s expired self-signed certificate is still generated again, not refused', async t => {
  const dir = tempDir(t)
  const dataDir = join(dir, 'data')
  mkdirSync(join(dataDir, 'tls'), { recursive: true, mode: 0o700 })
  const old = await datedPair(dir, 'old', days(-30), days(-1))
  copyFileSync(old.certPath, join(dataDir, 'tls', 'cert.pem'))
  copyFileSync(old.keyPath, join(dataDir, 'tls', 'key.pem'))
  const cert = await loadCertificate({ dataDir, host: '127.0.0.1' })
  t.match(cert.regenerated, /^it expired on /)
  t.ok(cert.generated && cert.selfSigned)
  const x509 = new X509Certificate(cert.cert)
  t.ok(Date.parse(x509.validFrom) <= Date.now() && Date.parse(x509.validTo) > Date.now(), 'the new one is in its dates')
  await cert.save?.()
  t.equal(new X509Certificate(readFileSync(join(dataDir, 'tls', 'cert.pem'))).fingerprint256, cert.fingerprint)
})

interface Logged { level: string, fields: Record<string, unknown>, msg: string }

function recordingLog (): { log: FastifyBaseLogger, lines: Logged[] } {
  const lines: Logged[] = []
  const at = (level: string) => (fields: Record<string, unknown> | string, msg?: string) => {
    lines.push(typeof fields === 'string' ? { level, fields: {}, msg: fields } : { level, fields, msg: msg ?? '' })
  }
  const log = { info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug') } as unknown as FastifyBaseLogger
  return { log, lines }
}

async function presented (port: number): Promise<string> {
  const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false })
  await once(socket, 'secureConnect')
  const fingerprint = socket.getPeerCertificate().fingerprint256
  socket.destroy()
  return fingerprint
}

t.test('on reload, a pair out of its dates is refused with a warning and the current pair stays', async t => {
  const dir = tempDir(t)
  const live = await datedPair(dir, 'live', days(-1), days(30))
  const certPath = join(dir, 'fullchain.pem')
  const keyPath = join(dir, 'privkey.pem')
  copyFileSync(live.certPath, certPath)
  copyFileSync(live.keyPath, keyPath)
  const req = given(dir, { certPath, keyPath })
  const current = await loadCertificate(req)
  const server = tls.createServer({ cert: current.cert, key: current.key }, socket => socket.end())
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  const port = (server.address() as AddressInfo).port

  const results: ReloadResult[] = []
  const { log, lines } = recordingLog()
  let settled: () => void = () => {}
  const reloader = reloadCertificate(server, req, current, log, { interval: 60_000, onReload: result => { results.push(result); settled() } })
  t.teardown(() => reloader.stop())
  const reload = async (): Promise<void> => {
    const done = new Promise<void>(resolve => { settled = resolve })
    reloader.reload('test')
    await done
  }

  for (const [name, from, to, why] of [
    ['expired', days(-30), days(-1), /has expired/],
    ['future', days(1), days(30), /is not valid yet/]
  ] as Array<[string, Date, Date, RegExp]>) {
    const pair = await datedPair(dir, name, from, to)
    // Key first, then certificate, both matching: only the dates are wrong.
    copyFileSync(pair.keyPath, keyPath)
    copyFileSync(pair.certPath, certPath)
    lines.length = 0
    await reload()
    t.equal(results.at(-1), 'failed', `${name}: counted as failed`)
    t.same(lines.map(l => [l.level, l.msg]), [['warn', 'certificate reload failed; serving the current one']], `${name}: one warning`)
    t.match(lines[0]?.fields, { why: 'test', error: why }, `${name}: it says why`)
    t.equal(await presented(port), current.fingerprint, `${name}: the current certificate is still presented`)
  }

  const renewed = await datedPair(dir, 'renewed', days(-1), days(60))
  copyFileSync(renewed.keyPath, keyPath)
  copyFileSync(renewed.certPath, certPath)
  await reload()
  t.equal(results.at(-1), 'reloaded', 'a renewal in its dates still takes')
  t.equal(await presented(port), new X509Certificate(renewed.cert).fingerprint256)
})
