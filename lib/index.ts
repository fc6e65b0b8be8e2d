import { Server as HttpServer } from 'node:http'
import { Server as HttpsServer } from 'node:https'
import type { AddressInfo, Socket } from 'node:net'
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import { Registry as PromRegistry } from 'prom-client'
import { AuthThrottle } from './relay/auth-throttle'
import { challengeHook } from './relay/challenge'
import { RendezvousOptionError } from './errors'
import { installHandoff } from './relay/handoff'
import { createHiddenSide } from './relay/hidden-side'
import { createMetrics } from './relay/metrics'
import { createMobileSide, type SplicedPair, type Ticket } from './relay/mobile-side'
import { resolveOptions, type RendezvousOptions, type ResolvedOptions } from './options'
import { ParkingLot } from './relay/parking-lot'
import { FileRegistry } from './registry/file-registry'
import { MemoryRegistry } from './registry/memory-registry'
import type { Registry } from './registry/registry'
import type { ReplayCache } from './stores/replay-cache'
import { MemoryReplayCache } from './stores/memory-replay-cache'
import { MemoryThrottleStore } from './stores/memory-throttle-store'
import { createDefaultVerifier, normaliseVerdict } from './tokens/verifier'
import { previousSecret } from './registry/records'
import { registerLiveMetrics, type IdCounts } from './relay/live-metrics'
import { addHealthRoutes } from './health/routes'
import { attachAdmin } from './admin/attach'

export type { RendezvousOptions, TokenVerdict, VerifyToken, TotpMode, AuthFailureLimits, AdminOptions } from './options'
export type { Registry, IdentityRecord, AddIdentity, RotateSecret } from './registry/registry'
export type { ReplayCache, ReplayVerdict } from './stores/replay-cache'
export type { ThrottleStore } from './stores/throttle-store'
export { FileRegistry } from './registry/file-registry'
export { MemoryRegistry } from './registry/memory-registry'
export { MemoryReplayCache } from './stores/memory-replay-cache'
export { MemoryThrottleStore } from './stores/memory-throttle-store'
export { createV1Token } from './tokens/v1'
export * as errors from './errors'

export interface RendezvousStats {
  parked: number
  waiting: number
  spliced: number
}

export interface RendezvousDecorator {
  registry: Registry
  /** The prom-client registry holding the rendezvous_ metrics, unless metrics are off. */
  metrics: PromRegistry | undefined
  stats: () => RendezvousStats
  /** Parked connections for one ID. */
  parkedFor: (id: string) => number
  /** Live counts of every ID that has parked, waiting or spliced connections. */
  perId: () => Map<string, IdCounts>
  /** Where the admin listener is bound, once the app is ready; undefined when it is off. */
  adminAddress: () => AddressInfo | undefined
}

declare module 'fastify' {
  interface FastifyInstance {
    rendezvous: RendezvousDecorator
  }
}

function makeVerifier (o: ResolvedOptions, registry: Registry, replayCache: ReplayCache) {
  const custom = o.verifyToken
  if (custom === undefined) {
    return createDefaultVerifier({
      lookupSecret: id => registry.get(id)?.secret,
      lookupPreviousSecret: id => previousSecret(registry.get(id)),
      replayCache,
      totp: o.totp,
      skewSeconds: o.tokenSkew
    })
  }
  return async (id: string, token: string) => registry.get(id) === undefined
    ? { ok: false as const, reason: 'unknown_id', status: 401 as const }
    : normaliseVerdict(await custom(id, token))
}

const plugin: FastifyPluginAsync<RendezvousOptions> = async (fastify: FastifyInstance, opts) => {
  const o = resolveOptions(opts)
  const server: unknown = fastify.server
  if (!(server instanceof HttpServer) && !(server instanceof HttpsServer)) {
    throw new RendezvousOptionError('the rendezvous needs an HTTP/1.1 server (http or https), not HTTP/2')
  }
  const log = fastify.log.child({ plugin: 'rendezvous' })
  const registry: Registry = o.registry ?? (o.dataDir !== undefined ? new FileRegistry({ dataDir: o.dataDir }) : new MemoryRegistry())
  await registry.ready()
  const promRegistry = o.metrics === false ? undefined : (o.metrics ?? appMetricsRegistry(fastify) ?? new PromRegistry())
  const metrics = createMetrics(promRegistry ?? false)
  const replayCache = o.replayCache ?? new MemoryReplayCache({ maxEntries: o.replayCacheSize })
  const throttleStore = o.throttleStore ?? new MemoryThrottleStore()
  const lot = new ParkingLot({
    maxPerId: o.maxParkedPerId,
    maxTotal: o.maxParked,
    maxWaitersPerId: o.maxWaitersPerId,
    maxWaiters: o.maxWaiters,
    keepAliveInitialDelay: o.keepAliveInitialDelay
  }, {
    onChange: (parked, waiting) => metrics.lot(parked, waiting),
    onParkedExit: (id, why) => {
      metrics.parkedExit(why)
      log.debug({ id, why }, 'parked connection left')
    }
  })
  const splices = new Set<SplicedPair>()
  const handshakes = new Set<Socket>()
  let closing = false
  const isUnderPressure = (): boolean => {
    const check = (fastify as unknown as { isUnderPressure?: () => boolean }).isUnderPressure
    return typeof check === 'function' && check.call(fastify)
  }

  const onConnect = createHiddenSide({
    verify: makeVerifier(o, registry, replayCache),
    throttle: new AuthThrottle(throttleStore, o.authFailures),
    lot,
    metrics,
    log,
    limits: o,
    isClosing: () => closing,
    track: socket => {
      handshakes.add(socket)
      return () => handshakes.delete(socket)
    }
  })
  const mobile = createMobileSide({
    registry,
    lot,
    metrics,
    log,
    limits: o,
    refusing: () => closing ? 'shutting_down' : isUnderPressure() ? 'under_pressure' : undefined,
    splices
  })
  const uninstall = installHandoff<Ticket>(server as HttpServer, { decide: mobile.decide, onClaimed: mobile.onClaimed, onConnect })
  const unsubscribe = registry.onRemove(id => {
    const closed = lot.evict(id)
    log.info({ id, closed }, 'ID removed; its parked connections were closed')
  })

  const perId = (): Map<string, IdCounts> => {
    const out = new Map<string, IdCounts>()
    for (const [id, c] of lot.perId()) out.set(id, { ...c, spliced: 0 })
    for (const pair of splices) {
      const c = out.get(pair.id) ?? { parked: 0, waiting: 0, spliced: 0 }
      out.set(pair.id, { ...c, spliced: c.spliced + 1 })
    }
    return out
  }
  const unregisterLive = registerLiveMetrics(promRegistry, perId, o.metricsPerId)
  const stats = (): RendezvousStats => ({ ...lot.size, spliced: splices.size })
  addHealthRoutes(fastify, o, {
    listening: () => fastify.server.listening,
    closing: () => closing,
    underPressure: isUnderPressure,
    lotFull: () => lot.size.parked >= o.maxParked,
    checkRegistry: registry.check?.bind(registry),
    registryTimeout: 2_000
  }, stats)
  const disconnect = (id: string): { parked: number, spliced: number } => {
    const parked = lot.evict(id)
    let spliced = 0
    for (const pair of splices) {
      if (pair.id === id) { pair.abort(); spliced++ }
    }
    log.info({ id, parked, spliced }, 'ID disconnected by the admin API')
    return { parked, spliced }
  }
  const adminAddress = o.admin === undefined ? () => undefined : attachAdmin(fastify, o.admin, { registry, counts: perId, disconnect })

  fastify.addHook('onRequest', challengeHook(o.realm, metrics))
  fastify.decorate('rendezvous', {
    registry,
    metrics: promRegistry,
    stats,
    parkedFor: (id: string) => lot.parkedFor(id.toLowerCase()),
    perId,
    adminAddress
  } satisfies RendezvousDecorator)

  fastify.addHook('preClose', async () => {
    closing = true
    lot.closeAll()
    for (const socket of handshakes) socket.destroy()
    if (o.closeGracePeriod > 0 && splices.size > 0) {
      const drained = Promise.all([...splices].map(s => s.done))
      await Promise.race([drained, new Promise(resolve => setTimeout(resolve, o.closeGracePeriod).unref())])
    }
    for (const pair of splices) pair.abort()
  })
  fastify.addHook('onClose', async () => {
    uninstall()
    unsubscribe()
    unregisterLive()
    if (o.registry === undefined) await registry.close()
    if (o.replayCache === undefined) await replayCache.close?.()
    if (o.throttleStore === undefined) await throttleStore.close?.()
  })
}

// An app that already serves metrics with fastify-metrics (registered before this plugin) gets the
// rendezvous_ metrics on that same registry: one scrape, one set of default process metrics.
function appMetricsRegistry (fastify: FastifyInstance): PromRegistry | undefined {
  const client = (fastify as unknown as { metrics?: { client?: { register?: unknown } } }).metrics?.client
  const register = client?.register as PromRegistry | undefined
  return typeof register?.registerMetric === 'function' && typeof register.getSingleMetric === 'function' ? register : undefined
}

const rendezvous = fp(plugin, { fastify: '5.x', name: 'fastify-rendezvous' })

export default rendezvous
export { rendezvous }

// `require('fastify-rendezvous')` returns the plugin itself, as Fastify plugins do.
module.exports = Object.assign(rendezvous, module.exports)
