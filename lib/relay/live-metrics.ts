import { Gauge, type Registry } from 'prom-client'
import { metric } from './metrics'

export interface IdCounts { parked: number, waiting: number, spliced: number }

/** What one plugin instance holds right now, read at each scrape. */
export interface LiveSource {
  /** Its connections in all. */
  totals: () => IdCounts
  /** The same, per ID. */
  perId: () => Map<string, IdCounts>
}

// Every plugin instance that shares a prom-client registry (two apps in one process, or fastify-metrics'
// global one) adds its source; the gauges sum the live ones at scrape time, and a closed instance's share leaves.
const sources = new WeakMap<Registry, Set<LiveSource>>()

// One gauge per registry: a second instance's reads the same sources, so the first one made serves both.
function gauge (registry: Registry, name: string, help: string, labelNames: string[], collect: (g: Gauge) => void): void {
  metric(registry, name, () => new Gauge({ name, help, labelNames, registers: [registry], collect () { collect(this) } }))
}

function live (registry: Registry): Set<LiveSource> {
  return sources.get(registry) ?? new Set()
}

function summed (registry: Registry): IdCounts {
  const sum = { parked: 0, waiting: 0, spliced: 0 }
  for (const source of live(registry)) {
    const c = source.totals()
    sum.parked += c.parked
    sum.waiting += c.waiting
    sum.spliced += c.spliced
  }
  return sum
}

function merged (registry: Registry): Map<string, IdCounts> {
  const out = new Map<string, IdCounts>()
  for (const source of live(registry)) {
    for (const [id, c] of source.perId()) {
      const sum = out.get(id) ?? { parked: 0, waiting: 0, spliced: 0 }
      out.set(id, { parked: sum.parked + c.parked, waiting: sum.waiting + c.waiting, spliced: sum.spliced + c.spliced })
    }
  }
  return out
}

const TOTALS = {
  parked: ['rendezvous_parked_connections', 'Hidden-server connections parked now'],
  waiting: ['rendezvous_waiting_clients', 'Mobile clients waiting for a parked connection now'],
  spliced: ['rendezvous_spliced_connections', 'Spliced pairs open now']
} as const

/**
 * Gauges read from the relay's state when scraped. Per-ID series are opt-in
 * (`perId`): with many IDs they multiply the series a scrape returns, so the
 * default keeps label cardinality bounded. Returns the unregister function.
 */
export function registerLiveMetrics (registry: Registry | false | undefined, source: LiveSource, perId: boolean): () => void {
  if (registry === false || registry === undefined) return () => {}
  let set = sources.get(registry)
  if (set === undefined) sources.set(registry, set = new Set())
  set.add(source)
  for (const key of ['parked', 'waiting', 'spliced'] as const) {
    const [name, help] = TOTALS[key]
    gauge(registry, name, help, [], g => { g.set(summed(registry)[key]) })
  }
  gauge(registry, 'rendezvous_parked_ids', 'Distinct IDs with at least one parked connection now', [], g => {
    let n = 0
    for (const c of merged(registry).values()) if (c.parked > 0) n++
    g.set(n)
  })
  if (perId) {
    for (const key of ['parked', 'waiting', 'spliced'] as const) {
      gauge(registry, `rendezvous_id_${key}`, `Connections ${key} now, per ID (opt-in: metricsPerId)`, ['id'], g => {
        g.reset()
        for (const [id, c] of merged(registry)) if (c[key] > 0) g.set({ id }, c[key])
      })
    }
  }
  return () => { set.delete(source) }
}
