import t from 'tap'
import Fastify from 'fastify'
import { Counter, Gauge, Registry as PromRegistry } from 'prom-client'
import rendezvous, { MemoryRegistry } from '../../lib/index'
import { PLUGIN_METRICS, createMetrics } from '../../lib/relay/metrics'
import { registerLiveMetrics } from '../../lib/relay/live-metrics'
import { adminRequestCounter } from '../../lib/admin/metrics'
import { createClusterMetrics } from '../../lib/cluster/metrics'
import { tlsMetrics } from '../../lib/server/tls-metrics'
import { startRendezvous, untilParked } from '../helpers/rendezvous'
import { sample } from '../helpers/prometheus'

/*
 * A metric of one of the plugin's names already on the registry given as
 * `metrics`: prom-client keeps the first metric of a name, so the plugin
 * used to count into the app's. With other labels, the first CONNECT that
 * parked threw inside prom-client (an uncaught exception); with the same
 * shape, the app's values showed as the relay's.
 */

type Test = Parameters<Parameters<typeof t.test>[0]>[0]

async function registerWith (t: Test, metrics: PromRegistry): Promise<unknown> {
  const app = Fastify()
  t.teardown(async () => { await app.close().catch(() => {}) })
  try {
    await app.register(rendezvous, { registry: new MemoryRegistry(), metrics })
    await app.ready()
    return undefined
  } catch (err) {
    return err
  }
}

t.test('an app metric of one of the plugin\'s names with other labels or another type is refused at registration, naming it and why', async t => {
  const cases: Array<[string, (registers: PromRegistry[]) => void, string]> = [
    ['a counter with other labels', registers => new Counter({ name: 'rendezvous_connect_total', help: 'mine', labelNames: ['foo'], registers }),
      'metrics already holds rendezvous_connect_total, a counter with label foo, where the relay\'s is a counter with label outcome: the relay would fail counting into it; remove it from that registry, or give the plugin a registry of its own'],
    ['a gauge for a counter', registers => new Gauge({ name: 'rendezvous_requests_total', help: 'mine, a gauge', registers }),
      'metrics already holds rendezvous_requests_total, a gauge without labels, where the relay\'s is a counter with label outcome: the relay would fail counting into it; remove it from that registry, or give the plugin a registry of its own'],
    ['a counter without labels for the admin listener\'s', registers => new Counter({ name: 'rendezvous_admin_requests_total', help: 'mine', registers }),
      'metrics already holds rendezvous_admin_requests_total, a counter without labels, where the relay\'s is a counter with labels action, status: the relay would fail counting into it; remove it from that registry, or give the plugin a registry of its own']
  ]
  for (const [name, make, message] of cases) {
    const metrics = new PromRegistry()
    make([metrics])
    const err = await registerWith(t, metrics)
    t.match(err, { code: 'FST_RENDEZVOUS_BAD_OPTION', message: `Invalid rendezvous option: ${message}` }, name)
    t.equal(metrics.getMetricsAsArray().length, 1, `${name}: the refused plugin registered nothing`)
  }
})

t.test('an app metric of the same shape as one of the plugin\'s is refused, not adopted: its values would show as the relay\'s', async t => {
  const metrics = new PromRegistry()
  const mine = new Gauge({ name: 'rendezvous_parked_connections', help: 'mine', registers: [metrics] })
  mine.set(42)
  const err = await registerWith(t, metrics)
  t.match(err, {
    code: 'FST_RENDEZVOUS_BAD_OPTION',
    message: 'Invalid rendezvous option: metrics already holds rendezvous_parked_connections, a gauge without labels that fastify-rendezvous did not make: the relay\'s values would be mixed with the app\'s; remove it from that registry, or give the plugin a registry of its own'
  })
})

t.test('two apps sharing one registry: the second takes the first\'s metrics, and their counts add up on the wire', async t => {
  const metrics = new PromRegistry()
  const a = await startRendezvous({ plugin: { metrics, metricsPerId: true } })
  const b = await startRendezvous({ plugin: { metrics, metricsPerId: true } })
  t.teardown(async () => { await a.close(); await b.close() })
  const wires = [await a.park('hub-1'), await b.park('hub-1'), await b.park('hub-1')]
  await untilParked(a, 1)
  await untilParked(b, 2)
  const text = await metrics.metrics()
  t.equal(sample(text, 'rendezvous_connect_total{outcome="parked"}'), 3, 'one counter, counted into by both')
  t.equal(sample(text, 'rendezvous_parked_connections'), 3, 'one gauge, summing both')
  t.equal(sample(text, 'rendezvous_id_parked{id="hub-1"}'), 3, 'the per-ID gauge sums both too')
  for (const wire of wires) wire.socket.destroy()
})

t.test('PLUGIN_METRICS is what the plugin and serve make: each metric\'s type and labels', async t => {
  const registry = new PromRegistry()
  createMetrics(registry)
  registerLiveMetrics(registry, { totals: () => ({ parked: 0, waiting: 0, spliced: 0 }), perId: () => new Map() }, true)
  adminRequestCounter(registry)
  createClusterMetrics(registry, () => true).close()
  tlsMetrics(registry)
  const made = registry.getMetricsAsArray().map(m => {
    const { name, type, labelNames } = m as unknown as { name: string, type: string, labelNames: string[] }
    return [name, { type, labelNames }]
  })
  t.same(Object.fromEntries(made), PLUGIN_METRICS)
  t.equal(made.length, Object.keys(PLUGIN_METRICS).length, 'no metric left out of the table')
})
