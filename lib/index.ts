import { Server as HttpServer } from 'node:http'
import { Server as HttpsServer } from 'node:https'
import type { AddressInfo, Socket } from 'node:net'
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import { Registry as PromRegistry } from 'prom-client'
import { AuthThrottle } from './relay/auth-throttle'
import { challengeHook, unroutedAnswer, type AnswerUnrouted } from './relay/challenge'
import { clientErrorHandler } from './http/client-error'
import { frameworkErrors } from './relay/framework-errors'
import { RendezvousOptionError } from './errors'
import { installHandoff, setHandshakeTimeout } from './relay/handoff'
import { capConnectionsPerAddress } from './relay/connection-cap'
import { createHiddenSide } from './relay/hidden-side'
import { createMetrics } from './relay/metrics'
import { createMobileSide, type SplicedPair, type Ticket } from './relay/mobile-side'
import { announceSplicePath } from './relay/native-addon'
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
import type { IdCounts } from './relay/live-metrics'
import { appMetricsRegistry, attachOperations } from './operations'
import { openCluster } from './cluster/cluster'
import type * as cluster from './cluster/options'
import type * as redis from './cluster/redis-connection'
import type * as options from './options'
import type * as registries from './registry/registry'
import type * as replay from './stores/replay-cache'
import type * as throttle from './stores/throttle-store'
import { createV1Token } from './tokens/v1'
import { createTotp } from './tokens/totp'
import * as errors from './errors'

interface Stats {
  parked: number
  waiting: number
  spliced: number
}

interface Decorator {
  registry: Registry
  /** The prom-client registry holding the rendezvous_ metrics, unless metrics are off. */
  metrics: PromRegistry | undefined
  stats: () => Stats
  /** Parked connections for one ID. */
  parkedFor: (id: string) => number
  /** Live counts of every ID that has parked, waiting or spliced connections. */
  perId: () => Map<string, IdCounts>
  /** Where the admin listener is bound, once the app is ready; undefined when it is off. */
  adminAddress: () => AddressInfo | undefined
  /** False while cluster mode cannot reach Redis (the node is not ready); always true on a single node. */
  reachable: () => boolean
  /**
   * Answers a request no route handles as the plugin does: 401 with the
   * Digest challenge, or 404 (429 past `unknownIdFailures`) when its
   * credential names an unknown ID. For Fastify's `frameworkErrors`, whose
   * FST_ERR_BAD_URL (a path the router cannot decode) never reaches a hook;
   * the package's `frameworkErrors` does this.
   */
  answerUnrouted: AnswerUnrouted
  /** Cluster mode only: this node's name, where other nodes reach it, and how to swap renewed peer TLS material in. */
  cluster: { nodeId: string, peerAddress: string | undefined, setPeerTls: (tls: cluster.PeerTlsOptions) => void } | undefined
}

declare module 'fastify' {
  interface FastifyInstance {
    rendezvous: Decorator
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
  announceSplicePath(o.splice, log)
  const cluster = o.redis === undefined ? undefined : await openCluster(o.redis, o.cluster, log)
  const registry: Registry = o.registry ?? cluster?.registry ?? (o.dataDir !== undefined ? new FileRegistry({ dataDir: o.dataDir }) : new MemoryRegistry())
  await registry.ready()
  const promRegistry = o.metrics === false ? undefined : (o.metrics ?? appMetricsRegistry(fastify) ?? new PromRegistry())
  const metrics = createMetrics(promRegistry ?? false)
  const replayCache = o.replayCache ?? cluster?.replayCache ?? new MemoryReplayCache({ maxEntries: o.replayCacheSize })
  const throttleStore = o.throttleStore ?? cluster?.throttleStore ?? new MemoryThrottleStore()
  const lot = new ParkingLot({
    maxPerId: o.maxParkedPerId,
    maxTotal: o.maxParked,
    maxWaitersPerId: o.maxWaitersPerId,
    maxWaiters: o.maxWaiters,
    keepAliveInitialDelay: o.keepAliveInitialDelay
  }, {
    onChange: (parked, waiting, id) => {
      metrics.lot(parked, waiting)
      if (id !== undefined) cluster?.parkedChanged(id)
    },
    onParkedExit: (id, why) => {
      metrics.parkedExit(why)
      log.info({ id, reason: why }, 'parked connection left')
    }
  })
  const splices = new Set<SplicedPair>()
  const handshakes = new Set<Socket>()
  let closing = false
  const isUnderPressure = (): boolean => {
    const check = (fastify as unknown as { isUnderPressure?: () => boolean }).isUnderPressure
    return typeof check === 'function' && check.call(fastify)
  }

  const cap = o.maxConnectionsPerAddress > 0
    ? capConnectionsPerAddress(server as HttpServer, o.maxConnectionsPerAddress, () => metrics.connectionRefused('per_address_cap'))
    : undefined
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
    },
    // Parked, a hidden server's connection is bounded by the parking limits and maxSpliced, not by its address.
    onParked: socket => cap?.exempt(socket)
  })
  const { perAddress: probeLimit, window: probeWindow, coolOff: probeCoolOff } = o.unknownIdFailures
  const probes = probeLimit > 0 ? new AuthThrottle(throttleStore, { perPair: 0, perAddress: probeLimit, window: probeWindow, coolOff: probeCoolOff }, 'unknownid') : undefined
  const remote = await cluster?.start({ lot, splices, spliceIdleTimeout: o.spliceIdleTimeout, splice: o.splice, relayMetrics: metrics, isClosing: () => closing, metrics: promRegistry })
  const mobile = createMobileSide({
    registry,
    remote,
    lot,
    metrics,
    log,
    limits: o,
    refusing: () => closing ? 'shutting_down' : isUnderPressure() ? 'under_pressure' : undefined,
    coolingOff: async address => probes === undefined ? 0 : await probes.check(address, ''),
    splices
  })
  const uninstall = installHandoff<Ticket>(server as HttpServer, { decide: mobile.decide, onClaimed: mobile.onClaimed, onConnect })
  if (o.handshakeTimeout > 0) setHandshakeTimeout(server as HttpServer, o.handshakeTimeout)
  const unsubscribe = registry.onRemove(id => {
    const closed = lot.evict(id)
    log.info({ id, closed }, 'the ID was removed or its old secret cut off; its parked connections were closed')
  })

  const operations = attachOperations(fastify, o, {
    registry, lot, splices, log, promRegistry, closing: () => closing, underPressure: isUnderPressure, reachable: () => cluster?.reachable() ?? true
  })

  const answerUnrouted = unroutedAnswer(o.realm, metrics, probes)
  fastify.addHook('onRequest', challengeHook(answerUnrouted))
  fastify.decorate('rendezvous', {
    registry,
    metrics: promRegistry,
    stats: () => ({ ...lot.size, spliced: splices.size }),
    parkedFor: (id: string) => lot.parkedFor(id.toLowerCase()),
    answerUnrouted,
    perId: operations.perId,
    adminAddress: operations.adminAddress,
    reachable: () => cluster?.reachable() ?? true,
    cluster: cluster === undefined ? undefined : { nodeId: cluster.nodeId, get peerAddress () { return cluster.peerAddress() }, setPeerTls: cluster.setPeerTls }
  } satisfies Decorator)

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
    cap?.remove()
    unsubscribe()
    operations.close()
    if (o.registry === undefined) await registry.close()
    if (o.replayCache === undefined) await replayCache.close?.()
    if (o.throttleStore === undefined) await throttleStore.close?.()
    await cluster?.close()
  })
}

/** The plugin, carrying the package's other exports as Fastify's own plugins do. */
interface RendezvousPlugin extends FastifyPluginAsync<RendezvousOptions> {
  default: RendezvousPlugin
  rendezvous: RendezvousPlugin
  fastifyRendezvous: RendezvousPlugin
  FileRegistry: typeof FileRegistry
  MemoryRegistry: typeof MemoryRegistry
  MemoryReplayCache: typeof MemoryReplayCache
  MemoryThrottleStore: typeof MemoryThrottleStore
  createV1Token: typeof createV1Token
  createTotp: typeof createTotp
  errors: typeof errors
  clientErrorHandler: typeof clientErrorHandler
  frameworkErrors: typeof frameworkErrors
}

// The types of the package, for `import { type X } from 'fastify-rendezvous'`
// and `rendezvous.X`. Types only, so it merges with the constant below.
declare namespace rendezvous {
  export type RendezvousOptions = options.RendezvousOptions
  export type TokenVerdict = options.TokenVerdict
  export type VerifyToken = options.VerifyToken
  export type TotpMode = options.TotpMode
  export type AuthFailureLimits = options.AuthFailureLimits
  export type UnknownIdLimits = options.UnknownIdLimits
  export type Registry = registries.Registry
  export type IdentityRecord = registries.IdentityRecord
  export type AddIdentity = registries.AddIdentity
  export type RotateSecret = registries.RotateSecret
  export type AdminOptions = options.AdminOptions
  export type ReplayCache = replay.ReplayCache
  export type ReplayVerdict = replay.ReplayVerdict
  export type ThrottleStore = throttle.ThrottleStore
  export type ClusterOptions = cluster.ClusterOptions
  export type PeerTlsOptions = cluster.PeerTlsOptions
  export type RedisSource = redis.RedisSource
  export type FileRegistry = InstanceType<typeof FileRegistry>
  export type MemoryRegistry = InstanceType<typeof MemoryRegistry>
  export type MemoryReplayCache = InstanceType<typeof MemoryReplayCache>
  export type MemoryThrottleStore = InstanceType<typeof MemoryThrottleStore>
  export type RendezvousStats = Stats
  export type RendezvousDecorator = Decorator
}

// eslint-disable-next-line @typescript-eslint/no-redeclare -- merges with the types-only namespace above
const rendezvous = fp(plugin, { fastify: '5.x', name: 'fastify-rendezvous' }) as RendezvousPlugin

// The package is CommonJS shaped like Fastify's own plugins, so that every
// consumer gets the plugin function: `require('fastify-rendezvous')`, and an
// ESM default import, which is `module.exports`. `export =` makes the emitted
// types say so (an `export default` would give TypeScript's ESM view the
// whole module object); each name is set as `module.exports.name` because that
// is the form Node's ESM loader detects named exports of CommonJS by. (tsc
// emits `export =` last, hence the assignment of the same value up front.)
// A new export needs a member in RendezvousPlugin (or a type in the
// namespace), a line here, and its name in test/package/exports.test.ts.
export = rendezvous
module.exports = rendezvous
module.exports.default = rendezvous
module.exports.rendezvous = rendezvous
module.exports.fastifyRendezvous = rendezvous
module.exports.FileRegistry = FileRegistry
module.exports.MemoryRegistry = MemoryRegistry
module.exports.MemoryReplayCache = MemoryReplayCache
module.exports.MemoryThrottleStore = MemoryThrottleStore
module.exports.createV1Token = createV1Token
module.exports.createTotp = createTotp
module.exports.errors = errors
module.exports.clientErrorHandler = clientErrorHandler
module.exports.frameworkErrors = frameworkErrors
