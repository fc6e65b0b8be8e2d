import t from 'tap'
import { until } from '../helpers/until'
import Fastify from 'fastify'
import fastifyMetrics from 'fastify-metrics'
import { Registry as PromRegistry } from 'prom-client'
import rendezvous, { MemoryRegistry } from '../../lib/index'
import { startRendezvous as startRelay, untilParked, type TestRendezvous as Relay } from '../helpers/rendezvous'
import { SECRET } from '../helpers/fixtures'
import { sample } from '../helpers/prometheus'

type Json = Awaited<ReturnType<PromRegistry['getMetricsAsJSON']>>

function value (metrics: Json, name: string, labels: Record<string, string> = {}): number | undefined {
  const metric = metrics.find(m => m.name === name)
  const found = metric?.values.find(v => Object.entries(labels).every(([k, l]) => (v.labels as Record<string, unknown>)[k] === l) &&
    Object.keys(v.labels).length === Object.keys(labels).length)
  return found?.value
}

function count (metrics: Json, histogram: string, part: 'count' | 'sum' = 'count'): number | undefined {
  return metrics.find(m => m.name === histogram)?.values.find(v => (v as { metricName?: string }).metricName === `${histogram}_${part}`)?.value
}

async function refused (relay: Relay, head: string, status: string): Promise<void> {
  const wire = await relay.open()
  wire.write(head)
  await wire.untilText('\r\n\r\n')
  if (!wire.text.startsWith(`HTTP/1.1 ${status}`)) throw new Error(`expected ${status}, got ${wire.text}`)
  wire.socket.destroy()
}

t.test('a scripted run of parks, rendezvous and refusals gives exact metric values', async t => {
  const registry = new PromRegistry()
  const relay = await startRelay({ ids: ['hub-1', 'hub-2', 'hub-3'], plugin: { metrics: registry, waitTimeout: 50 } })
  t.teardown(relay.close)
  // Parked in this order, so that hubs[0], the newest of hub-1's, is the one handed out.
  const second = await relay.park('hub-1')
  const hubs = [await relay.park('hub-1'), second, await relay.park('hub-2')]
  await untilParked(relay, 3)
  let m = await registry.getMetricsAsJSON()
  t.equal(value(m, 'rendezvous_parked_connections'), 3)
  t.equal(value(m, 'rendezvous_parked_ids'), 2, 'distinct IDs parked')

  await refused(relay, 'CONNECT uuid:hub-1?response=v1.1.abcdefghijklmnop.xx HTTP/1.1\r\nHost: h\r\n\r\n', '401')
  await refused(relay, 'CONNECT uuid:hub-1 HTTP/1.1\r\nHost: h\r\n\r\n', '407')
  await refused(relay, 'GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="nobody"\r\n\r\n', '404')
  await refused(relay, 'GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="hub-3"\r\n\r\n', '503')
  await refused(relay, 'GET / HTTP/1.1\r\nHost: h\r\n\r\n', '401')

  const client = await relay.open()
  client.write('GET /x HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="hub-1"\r\n\r\n')
  await hubs[0].untilText('\r\n\r\n')
  hubs[0].write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok')
  await client.untilText('ok')
  m = await registry.getMetricsAsJSON()
  t.equal(value(m, 'rendezvous_spliced_connections'), 1)
  t.equal(value(m, 'rendezvous_parked_ids'), 2, 'hub-1 still has one parked')
  hubs[0].socket.end()
  client.socket.end()
  await client.untilClosed()
  await until(async () => value(await registry.getMetricsAsJSON(), 'rendezvous_spliced_connections') === 0)

  m = await registry.getMetricsAsJSON()
  t.equal(value(m, 'rendezvous_connect_total', { outcome: 'parked' }), 3)
  t.equal(value(m, 'rendezvous_connect_total', { outcome: 'unauthorized' }), 1)
  t.equal(value(m, 'rendezvous_connect_total', { outcome: 'missing_token' }), 1)
  t.equal(value(m, 'rendezvous_requests_total', { outcome: 'relayed' }), 1)
  t.equal(value(m, 'rendezvous_requests_total', { outcome: 'challenged' }), 1)
  t.equal(value(m, 'rendezvous_requests_total', { outcome: 'unknown_id' }), 1)
  t.equal(value(m, 'rendezvous_requests_total', { outcome: 'no_hidden_server' }), 1)
  t.same(m.find(x => x.name === 'rendezvous_refusals_total')?.values.map(v => [v.labels, v.value]), [
    [{ side: 'hidden', reason: 'unauthorized' }, 1],
    [{ side: 'hidden', reason: 'missing_token' }, 1],
    [{ side: 'mobile', reason: 'unknown_id' }, 1],
    [{ side: 'mobile', reason: 'no_hidden_server' }, 1]
  ], 'refusals by side and reason; a challenge and a relay are not refusals')
  t.equal(count(m, 'rendezvous_handoff_seconds'), 1, 'one hand-off')
  t.ok((count(m, 'rendezvous_handoff_seconds', 'sum') ?? -1) >= 0)
  t.equal(count(m, 'rendezvous_wait_seconds'), 2)
  t.equal(value(m, 'rendezvous_splices_total', { end: 'closed' }), 1)
  t.equal(value(m, 'rendezvous_parked_connections'), 2)
  t.equal(value(m, 'rendezvous_parked_ids'), 2)
  t.notOk(m.some(x => x.name.startsWith('rendezvous_id_')), 'no per-ID series unless asked for')
  for (const h of hubs) h.socket.destroy()
})

t.test('metricsPerId adds series labelled by ID', async t => {
  const registry = new PromRegistry()
  const relay = await startRelay({ ids: ['hub-1', 'hub-2'], plugin: { metrics: registry, metricsPerId: true } })
  t.teardown(relay.close)
  const a = await relay.park('hub-1')
  const b = await relay.park('hub-1')
  const c = await relay.park('hub-2')
  await untilParked(relay, 3)
  const m = await registry.getMetricsAsJSON()
  t.equal(value(m, 'rendezvous_id_parked', { id: 'hub-1' }), 2)
  t.equal(value(m, 'rendezvous_id_parked', { id: 'hub-2' }), 1)
  c.socket.destroy()
  await untilParked(relay, 2)
  const after = await registry.getMetricsAsJSON()
  t.equal(value(after, 'rendezvous_id_parked', { id: 'hub-2' }), undefined, 'an ID with nothing parked has no series')
  a.socket.destroy()
  b.socket.destroy()
})

t.test('with fastify-metrics, one registry serves both, with one set of default metrics', async t => {
  const ids = new MemoryRegistry()
  await ids.add({ id: 'hub-1', secret: SECRET })
  const app = Fastify()
  t.teardown(async () => await app.close())
  await app.register(fastifyMetrics, { endpoint: '/metrics' })
  await app.register(rendezvous, { registry: ids })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.equal(app.rendezvous.metrics, (app as any).metrics.client.register, 'the plugin uses the app\'s registry')
  const relay = { port: (app.server.address() as any).port } as unknown as Relay
  const res = await fetch(`http://127.0.0.1:${relay.port}/metrics`)
  t.equal(res.status, 200)
  const text = await res.text()
  t.match(text, /^rendezvous_parked_connections 0$/m)
  t.match(text, /^rendezvous_parked_ids 0$/m)
  t.match(text, /# TYPE rendezvous_connect_total counter/)
  t.equal(text.match(/^# TYPE process_cpu_user_seconds_total /gm)?.length, 1, 'default metrics once')
  t.notMatch(text, /rendezvous_process_/, 'the plugin adds no default metrics of its own')
})

t.test('two apps sharing one registry: the gauges sum both, and a closed app leaves the sum', async t => {
  const registry = new PromRegistry()
  const plugin = { metrics: registry, waitTimeout: 10_000 }
  const a = await startRelay({ ids: ['hub-1', 'hub-2'], plugin })
  const b = await startRelay({ ids: ['hub-1', 'hub-3'], plugin })
  t.teardown(async () => { await a.close(); await b.close() })
  const gauges = async (): Promise<Record<string, number | undefined>> => {
    const text = await registry.metrics()
    return Object.fromEntries(['rendezvous_parked_connections', 'rendezvous_waiting_clients', 'rendezvous_spliced_connections', 'rendezvous_parked_ids']
      .map(name => [name.replace('rendezvous_', ''), sample(text, name)]))
  }
  // A: hub-1 twice (one of them then relays a client) and hub-2; B: hub-1 twice and a client waiting for hub-3.
  const onA = [await a.park('hub-1'), await a.park('hub-1'), await a.park('hub-2')]
  const onB = [await b.park('hub-1'), await b.park('hub-1')]
  await untilParked(a, 3)
  await untilParked(b, 2)
  const relayed = await a.open()
  relayed.write('GET /x HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="hub-1"\r\n\r\n')
  const hub = await Promise.race(onA.slice(0, 2).map(async w => { await w.untilText('GET /x'); return w }))
  hub.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
  await relayed.untilText('ok')
  const waiting = await b.open()
  waiting.write('GET /y HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="hub-3"\r\n\r\n')
  await until(() => b.app.rendezvous.stats().waiting === 1)
  t.same(a.app.rendezvous.stats(), { parked: 2, waiting: 0, spliced: 1 })
  t.same(b.app.rendezvous.stats(), { parked: 2, waiting: 1, spliced: 0 })
  t.same(await gauges(), { parked_connections: 4, waiting_clients: 1, spliced_connections: 1, parked_ids: 2 }, 'A and B added up')

  await a.close()
  t.same(await gauges(), { parked_connections: 2, waiting_clients: 1, spliced_connections: 0, parked_ids: 1 }, 'only B once A is closed')
  onB[0].socket.destroy()
  await untilParked(b, 1)
  t.same(await gauges(), { parked_connections: 1, waiting_clients: 1, spliced_connections: 0, parked_ids: 1 }, 'B\'s own changes still show')
  for (const w of [...onA, ...onB, relayed, waiting]) w.socket.destroy()
})
