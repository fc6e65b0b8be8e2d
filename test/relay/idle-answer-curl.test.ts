import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildServer } from '../../lib/server/app'
import { nativeSplicer } from '../../lib/relay/native-addon'
import { createV1Token } from '../../lib/tokens/v1'
import { run } from '../helpers/cli'
import { until } from '../helpers/until'
import { openWire } from '../helpers/wire'

/*
 * The standalone server with a short spliceIdleTimeout, curl as the mobile
 * client, and a hidden server that takes the request and never answers:
 * curl gets a 504 from the relay when the idle timeout ends the pair, not
 * an empty reply. On each data path the server can take for plain TCP.
 */

const IDLE_MS = 400
const BODY = 'the hidden server did not answer before the idle timeout\n'

const probe = spawnSync('curl', ['--version'], { encoding: 'utf8' })
const noCurl = probe.error !== undefined || probe.status !== 0 ? 'curl is not installed' : false
const native = nativeSplicer()

for (const splice of ['native', 'js'] as const) {
  const skip = noCurl !== false ? noCurl : splice === 'native' && 'reason' in native ? `the native splice is not available here (${native.reason})` : false

  t.test(`curl through buildServer (${splice} data path): a silent hidden server, a 504 at the idle timeout`, { skip }, async t => {
    // The standalone server names no data path of its own: it takes the one the environment names, as the test suite's runs do.
    const before = process.env.RENDEZVOUS_SPLICE
    process.env.RENDEZVOUS_SPLICE = splice
    t.teardown(() => { if (before === undefined) delete process.env.RENDEZVOUS_SPLICE; else process.env.RENDEZVOUS_SPLICE = before })
    const dataDir = mkdtempSync(join(tmpdir(), 'rv-idle-'))
    t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
    const app = await buildServer({ dataDir, tls: false, waitTimeout: 5000, metricsPath: false, logLevel: 'silent', limits: { spliceIdleTimeout: IDLE_MS } })
    t.teardown(async () => { await app.close() })
    await app.listen({ port: 0, host: '127.0.0.1' })
    const port = (app.server.address() as { port: number }).port
    const { secret } = await app.rendezvous.registry.add({ id: 'hub-1' })

    const hidden = await openWire(port, false, true)
    t.teardown(() => hidden.destroy())
    hidden.write(`CONNECT uuid:hub-1?response=${createV1Token('hub-1', secret)} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`)
    await hidden.untilText('\r\n\r\n')
    t.equal(hidden.text, 'HTTP/1.1 200 OK\r\n\r\n', 'parked')
    hidden.drain()
    await until(() => app.rendezvous.stats().parked === 1, 3000, 'parked')

    const started = Date.now()
    const curl = await run(t, 'curl', ['--silent', '--show-error', '--noproxy', '*', '--max-time', '20', '--include', '--digest', '--user', 'hub-1:anything', `http://127.0.0.1:${port}/status`])
    t.equal(curl.code, 0, `curl exits 0 (${curl.stderr.trim()})`)
    const out = curl.stdout.toString('latin1')
    const final = out.slice(out.lastIndexOf('HTTP/1.1 '))
    t.match(final, /^HTTP\/1\.1 504 Gateway Timeout\r\n/, 'curl sees the 504')
    t.ok(final.endsWith(`\r\n\r\n${BODY}`), 'with the refusal body')
    t.ok(Date.now() - started >= IDLE_MS - 50, 'at the idle timeout, not before')
    t.match(hidden.text, /^GET \/status HTTP\/1\.1\r\n/, 'the request had reached the hidden server')
  })
}
