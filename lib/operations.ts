import type { AddressInfo } from 'node:net'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import type { Registry as PromRegistry } from 'prom-client'
import { attachAdmin } from './admin/attach'
import { adminRequestCounter } from './admin/metrics'
import { addHealthRoutes } from './health/routes'
import type { ResolvedOptions } from './options'
import type { Registry } from './registry/registry'
import { registerLiveMetrics, type IdCounts } from './relay/live-metrics'
import type { SplicedPair } from './relay/mobile-side'
import type { ParkingLot } from './relay/parking-lot'

export interface OperationsDeps {
  registry: Registry
  lot: ParkingLot
  splices: Set<SplicedPair>
  log: FastifyBaseLogger
  promRegistry: PromRegistry | undefined
  closing: () => boolean
  underPressure: () => boolean
  /** False while cluster mode cannot reach Redis. */
  reachable: () => boolean
  /** False while the replay journal cannot be written. */
  journalWritable: () => boolean
  /** Tokens the replay cache can still take, when it can say. */
  replayCacheRoom?: () => number
  checkReplayCache?: () => Promise<void>
  checkThrottleStore?: () => Promise<void>
}

export interface Operations {
  perId: () => Map<string, IdCounts>
  adminAddress: () => AddressInfo | undefined
  /** Undoes what outlives the app otherwise (the live gauges' source). */
  close: () => void
}

/** What operators use beside the relay itself: health routes, live gauges, the admin listener. */
export function attachOperations (fastify: FastifyInstance, o: ResolvedOptions, deps: OperationsDeps): Operations {
  const { lot, splices, log } = deps
  const perId = (): Map<string, IdCounts> => {
    const out = new Map<string, IdCounts>()
    for (const [id, c] of lot.perId()) out.set(id, { ...c, spliced: 0 })
    for (const pair of splices) {
      const c = out.get(pair.id) ?? { parked: 0, waiting: 0, spliced: 0 }
      out.set(pair.id, { ...c, spliced: c.spliced + 1 })
    }
    return out
  }
  const totals = (): IdCounts => ({ ...lot.size, spliced: splices.size })
  const closeMetrics = registerLiveMetrics(deps.promRegistry, { totals, perId }, o.metricsPerId)
  // /readyz says registry_unreachable at each probe; the log says it once, when it starts and when it ends.
  const stopWatching = deps.registry.onHealth?.(error => {
    if (error === undefined) log.info('the registry can be read again')
    else log.warn({ error: error.message }, 'cannot read the registry; serving the IDs last read')
  })
  const close = (): void => {
    closeMetrics()
    stopWatching?.()
  }
  addHealthRoutes(fastify, o, {
    listening: () => fastify.server.listening,
    closing: deps.closing,
    underPressure: deps.underPressure,
    lotFull: () => lot.size.parked >= o.maxParked,
    checkRegistry: async () => {
      if (!deps.reachable()) throw new Error('the cluster cannot reach Redis')
      await deps.registry.check?.()
    },
    registryTimeout: 2_000,
    journalWritable: deps.journalWritable,
    replayCacheRoom: deps.replayCacheRoom,
    checkReplayCache: deps.checkReplayCache,
    checkThrottleStore: deps.checkThrottleStore
  }, totals)
  const disconnect = (id: string): { parked: number, spliced: number } => {
    const parked = lot.evict(id)
    let spliced = 0
    for (const pair of splices) {
      if (pair.id !== id) continue
      pair.abort()
      spliced++
    }
    log.info({ id, parked, spliced }, 'ID disconnected by the admin API')
    return { parked, spliced }
  }
  const adminAddress = o.admin === undefined ? () => undefined : attachAdmin(fastify, o.admin, { registry: deps.registry, counts: perId, disconnect }, adminRequestCounter(deps.promRegistry))
  return { perId, adminAddress, close }
}

/**
 * An app that already serves metrics with fastify-metrics (registered before
 * this plugin) gets the rendezvous_ metrics on that same registry: one
 * scrape, one set of default process metrics.
 */
export function appMetricsRegistry (fastify: FastifyInstance): PromRegistry | undefined {
  const client = (fastify as unknown as { metrics?: { client?: { register?: unknown } } }).metrics?.client
  const register = client?.register as PromRegistry | undefined
  return typeof register?.registerMetric === 'function' && typeof register.getSingleMetric === 'function' ? register : undefined
}
