import { X509Certificate } from 'node:crypto'
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import tls from 'node:tls'
import t from 'tap'
import { buildProblem, startCli } from '../helpers/cli'
import { datedPair, days } from '../helpers/dated-certificate'
import { sample } from '../helpers/prometheus'
import { until } from '../helpers/until'

// serve refuses a --tls-cert outside its dates, at start (one line, exit 1, as other certificate errors) and on reload.

type Test = Parameters<Parameters<typeof t.test>[0]>[0]

function tempDir (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'rendezvous-cert-dates-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

const ISO = '\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ'

t.test('serve refuses to start with an expired or not yet valid --tls-cert: one line, exit 1', async t => {
  const problem = buildProblem(t)
  if (problem !== undefined) return t.fail(problem)
  const dir = tempDir(t)
  const cases = [
    [await datedPair(dir, 'expired', days(-30), days(-1)), 'has expired'],
    [await datedPair(dir, 'future', days(2), days(30)), 'is not valid yet']
  ] as const
  for (const [pair, what] of cases) {
    const serve = startCli(t, ['serve', '--port', '0', '--data-dir', join(dir, 'data'), '--tls-cert', pair.certPath, '--tls-key', pair.keyPath], { timeoutMs: 15_000 })
    const exit = await serve.exited
    t.same(exit, { code: 1, signal: null }, `${what}: exit 1, as a certificate that is not PEM`)
    t.match(serve.stderr(), new RegExp(`^rendezvous: --tls-cert ${pair.certPath} ${what}: valid from ${ISO} to ${ISO}, and this host's clock says ${ISO}[^\\n]*\\n$`), `${what}: one line naming the file and the dates`)
    t.equal(serve.stdout(), '', `${what}: no banner, nothing listened`)
  }
})

function presented (port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      resolve(socket.getPeerCertificate().fingerprint256)
      socket.destroy()
    })
    socket.on('error', reject)
  })
}

t.test('an expired pair copied over the served one is refused on reload: the current pair stays, counted as failed, with a warning', async t => {
  const problem = buildProblem(t)
  if (problem !== undefined) return t.fail(problem)
  const dir = tempDir(t)
  const live = await datedPair(dir, 'live', days(-1), days(30))
  const expired = await datedPair(dir, 'expired', days(-30), days(-1))
  const cert = join(dir, 'fullchain.pem')
  const key = join(dir, 'privkey.pem')
  copyFileSync(live.certPath, cert)
  copyFileSync(live.keyPath, key)
  const serve = startCli(t, ['serve', '--port', '0', '--data-dir', join(dir, 'data'), '--tls-cert', cert, '--tls-key', key, '--metrics-listen', '127.0.0.1:0'])
  const [, port] = await serve.waitFor(/listening on https:\/\/127\.0\.0\.1:(\d+)\//)
  const [, metricsUrl] = await serve.waitFor(/Metrics: (http:\/\/127\.0\.0\.1:\d+\/metrics)/)
  const scrape = async (): Promise<string> => await (await fetch(metricsUrl)).text()
  const reloads = (result: string): string => `rendezvous_tls_reloads_total{listener="public",result="${result}"}`
  const liveFingerprint = new X509Certificate(live.cert).fingerprint256
  t.equal(await presented(Number(port)), liveFingerprint)

  copyFileSync(expired.keyPath, key)
  copyFileSync(expired.certPath, cert)
  serve.child.kill('SIGHUP')
  await until(async () => (sample(await scrape(), reloads('failed')) ?? 0) >= 1, 15_000, 'a failed reload')
  const text = await scrape()
  t.equal(sample(text, reloads('reloaded')), undefined, 'not counted as reloaded')
  t.equal(await presented(Number(port)), liveFingerprint, 'the current certificate is still presented')
  const warning = serve.stdout().split('\n').find(line => line.includes('certificate reload failed'))
  t.match(JSON.parse(warning ?? '{}'), { level: 40, msg: 'certificate reload failed; serving the current one', error: new RegExp(`--tls-cert ${cert} has expired`) }, 'a warning that says why')
  t.equal((await serve.stop('SIGTERM')).code, 0)
})
