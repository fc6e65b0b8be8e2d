import t from 'tap'
import { until } from '../helpers/until'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { Writable } from 'node:stream'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import underPressure from '@fastify/under-pressure'
import type { FastifyInstance } from 'fastify'
import { FileRegistry } from '../../lib/index'
import { startRendezvous as startRelay, untilParked, type TestRendezvous as Relay } from '../helpers/rendezvous'

const PATHS = { healthPath: '/healthz', readyPath: '/readyz' }

async function get (relay: Relay, path: string): Promise<{ status: number, body: any }> {
  const res = await fetch(`http://127.0.0.1:${relay.port}${path}`)
  return { status: res.status, body: await res.json() }
}

t.test('healthz and readyz answer 200 with small JSON bodies, without credentials', async t => {
  const relay = await startRelay({ plugin: PATHS })
  t.teardown(relay.close)
  t.same(await get(relay, '/healthz'), { status: 200, body: { status: 'ok', parked: 0, waiting: 0, spliced: 0 } })
  t.same(await get(relay, '/readyz'), { status: 200, body: { status: 'ready' } })
  // Other paths still meet the challenge.
  const res = await fetch(`http://127.0.0.1:${relay.port}/elsewhere`)
  t.equal(res.status, 401)
})

t.test('the routes are off by default and their paths are options', async t => {
  const relay = await startRelay({ plugin: { healthPath: '/live', readyPath: '/ready' } })
  t.teardown(relay.close)
  t.equal((await get(relay, '/ready')).status, 200)
  t.equal((await get(relay, '/live')).status, 200)
  t.equal((await fetch(`http://127.0.0.1:${relay.port}/readyz`)).status, 401)
  const plain = await startRelay()
  t.teardown(plain.close)
  t.equal((await fetch(`http://127.0.0.1:${plain.port}/healthz`)).status, 401)
})

t.test('a bad path is refused by name', async t => {
  await t.rejects(startRelay({ plugin: { readyPath: 'readyz' } }), /readyPath/)
})

t.test('readyz flips to 503 under pressure and back', async t => {
  let healthy = true
  const relay = await startRelay({
    plugin: PATHS,
    before: async (app: FastifyInstance) => { await app.register(underPressure, { healthCheck: async () => healthy, healthCheckInterval: 20 }) }
  })
  t.teardown(relay.close)
  t.equal((await get(relay, '/readyz')).status, 200)
  healthy = false
  await until(async () => (await get(relay, '/readyz')).status === 503)
  t.same((await get(relay, '/readyz')).body, { status: 'not ready', reasons: ['under_pressure'] })
  t.equal((await get(relay, '/healthz')).status, 200, 'alive all the same')
  healthy = true
  await until(async () => (await get(relay, '/readyz')).status === 200)
})

t.test('readyz says lot_full while the parking lot is full', async t => {
  const relay = await startRelay({ plugin: { ...PATHS, maxParked: 1 } })
  t.teardown(relay.close)
  const hidden = await relay.park('hub-1')
  await untilParked(relay, 1)
  t.same(await get(relay, '/readyz'), { status: 503, body: { status: 'not ready', reasons: ['lot_full'] } })
  hidden.socket.destroy()
  await untilParked(relay, 0)
  t.equal((await get(relay, '/readyz')).status, 200)
})

t.test('readyz is 503 with shutting_down while the server closes', async t => {
  // Fastify's own 503 for requests during close is off here, so the answer is the route's.
  const relay = await startRelay({ plugin: { ...PATHS, closeGracePeriod: 5000 }, fastify: { return503OnClosing: false, forceCloseConnections: false } })
  const probe = await relay.open()
  probe.write('GET /readyz HTTP/1.1\r\nHost: h\r\n\r\n')
  await probe.untilText('"ready"}')
  const hidden = await relay.park('hub-1')
  const client = await relay.open()
  client.write('GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="hub-1"\r\n\r\n')
  await hidden.untilText('\r\n\r\n')
  const closing = relay.close()
  probe.received = Buffer.alloc(0)
  probe.write('GET /readyz HTTP/1.1\r\nHost: h\r\n\r\n')
  await probe.untilText('}')
  t.match(probe.text, /^HTTP\/1\.1 503 /)
  t.match(probe.text, /"reasons":\["shutting_down"/)
  probe.socket.destroy()
  hidden.socket.destroy()
  await closing
})

t.test('readyz says registry_unreachable while the registry file cannot be read', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'rdv-ready-'))
  t.teardown(async () => await rm(dir, { recursive: true, force: true }))
  const registry = new FileRegistry({ dataDir: dir })
  await registry.add({ id: 'hub-1' })
  const relay = await startRelay({ plugin: { ...PATHS, registry } })
  t.teardown(async () => { await relay.close(); await registry.close() })
  t.equal((await get(relay, '/readyz')).status, 200)
  await writeFile(join(dir, 'ids.json'), '{ not json')
  t.same(await get(relay, '/readyz'), { status: 503, body: { status: 'not ready', reasons: ['registry_unreachable'] } })
  t.same(await get(relay, '/readyz'), { status: 503, body: { status: 'not ready', reasons: ['registry_unreachable'] } }, 'stays so on the next probe')
  await writeFile(join(dir, 'ids.json'), JSON.stringify({ version: 1, ids: {} }))
  t.equal((await get(relay, '/readyz')).status, 200)
})

t.test('a registry file that cannot be read is logged once at warn, its repair once at info, probe or no probe', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'rdv-ready-'))
  t.teardown(async () => await rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'ids.json')
  const registry = new FileRegistry({ dataDir: dir, pollIntervalMs: 20 })
  const added = await registry.add({ id: 'hub-1' })
  let raw = ''
  const stream = new Writable({ write (chunk, _e, cb) { raw += String(chunk); cb() } })
  const relay = await startRelay({ fastify: { logger: { level: 'info', stream } }, plugin: { ...PATHS, registry } })
  t.teardown(async () => { await relay.close(); await registry.close() })
  const lines = (): Array<{ level: number, msg: string, error?: string }> => raw.trim().split('\n').map(l => JSON.parse(l)).filter(l => /registry/.test(l.msg))
  const good = await readFile(file, 'utf8')

  await writeFile(file, '{corrupt')
  await until(() => lines().length === 1, 5000, 'the warning')
  t.match(lines(), [{ level: 40, msg: /cannot read the registry/, error: /ids\.json cannot be read: not valid JSON/ }])
  // Many polls, a probe, and another bad version of the file: one episode, one line.
  for (let i = 0; i < 3; i++) t.equal((await get(relay, '/readyz')).status, 503)
  await writeFile(file, '{"version":1}')
  await t.rejects(registry.check(), /"ids" is not an object/, 'another bad version, read')
  t.equal(lines().length, 1, 'still one line')

  await writeFile(file, good)
  await until(() => lines().length === 2, 5000, 'the recovery line')
  t.match(lines()[1], { level: 30, msg: /registry can be read again/ })
  t.equal(registry.get('hub-1')?.secret, added.secret)
  await writeFile(file, '{corrupt')
  await until(() => lines().length === 3, 5000, 'a new episode, a new warning')
  t.notOk(raw.includes(added.secret), 'never the secret')
})
