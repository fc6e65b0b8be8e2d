import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import t from 'tap'
import { Registry as PromRegistry } from 'prom-client'
import { nativeSplicer } from '../../lib/relay/native-addon'
import { startRendezvous, untilParked } from '../helpers/rendezvous'
import { relayOnce } from '../helpers/wire'
import { until } from '../helpers/until'

// The `splice` option: which data path a relay's pairs take, what is counted,
// and a clear failure at startup when `native` cannot be had.

const HEAD = 'GET /x HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="hub-1"\r\n\r\n'
const native = nativeSplicer()

async function pathsTaken (path: 'auto' | 'native' | 'js', tls: boolean): Promise<Record<string, number>> {
  const registry = new PromRegistry()
  const relay = await startRendezvous({ tls, plugin: { metrics: registry, splice: path } })
  try {
    const hidden = await relay.park('hub-1')
    await untilParked(relay, 1)
    const client = await relay.open()
    await relayOnce(client, hidden, HEAD, 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok', 'ok')
    await until(async () => relay.app.rendezvous.stats().spliced === 0)
    const metric = (await registry.getMetricsAsJSON()).find(m => m.name === 'rendezvous_splice_paths_total')
    return Object.fromEntries((metric?.values ?? []).map(v => [String(v.labels.path), v.value]))
  } finally {
    await relay.close()
  }
}

t.test('js: every pair takes the JavaScript path, and is counted so', async t => {
  t.same(await pathsTaken('js', false), { js: 1 })
})

t.test('native and auto: plain TCP goes native where the addon is built; TLS stays in JavaScript', { skip: 'reason' in native ? `the native splice is not available here (${native.reason})` : false }, async t => {
  t.same(await pathsTaken('native', false), { native: 1 })
  t.same(await pathsTaken('auto', false), { native: 1 })
  t.same(await pathsTaken('native', true), { js: 1 })
})

t.test('a bad value is refused with the option error', async t => {
  await t.rejects(startRendezvous({ plugin: { splice: 'fast' as 'js' } }), { code: 'FST_RENDEZVOUS_BAD_OPTION', message: /splice must be 'auto', 'native' or 'js', got fast/ })
})

t.test('native where the addon cannot be loaded fails at startup with its own code; auto falls back', async t => {
  // The non-Linux branch of the loader, in a child where process.platform says otherwise.
  const script = `
    Object.defineProperty(process, 'platform', { value: 'darwin' })
    const Fastify = require('fastify')
    const rendezvous = require('./lib/index').default
    const lines = []
    const start = async (splice) => {
      const app = Fastify({ logger: { level: 'info', stream: { write: l => lines.push(JSON.parse(l)) } } })
      try { await app.register(rendezvous, { splice }); await app.ready(); return 'started' } catch (err) { return err.code + ': ' + err.message } finally { await app.close() }
    }
    ;(async () => {
      console.log(await start('native'))
      console.log(await start('auto'))
      console.log(JSON.stringify(lines.find(l => l.splice !== undefined)))
    })()`
  const result = spawnSync(process.execPath, ['--import=tsx', '-e', script], { cwd: join(__dirname, '..', '..'), encoding: 'utf8', timeout: 60_000 })
  const [nativeLine, autoLine, logLine] = result.stdout.trim().split('\n')
  t.equal(nativeLine, "FST_RENDEZVOUS_NATIVE_UNAVAILABLE: splice: 'native' was asked for, but the native data path cannot be used: splice(2) is Linux only, this is darwin", result.stderr)
  t.equal(autoLine, 'started')
  t.match(JSON.parse(logLine), { splice: 'js', native: 'splice(2) is Linux only, this is darwin', msg: /JavaScript data path/ }, 'the startup line says which path, and why')
})
