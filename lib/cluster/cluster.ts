import type { Server } from 'node:net'
import { Server as TlsServer } from 'node:tls'
import type { FastifyBaseLogger } from 'fastify'
import type { Registry as PromRegistry } from 'prom-client'
import { RedisUnreachableError, RendezvousOptionError } from '../errors'
import type { ParkingLot } from '../relay/parking-lot'
import type { RemoteSource } from '../relay/remote-source'
import type { RendezvousMetrics } from '../relay/metrics'
import type { SplicedPair } from '../relay/mobile-side'
import type { SplicePath } from '../relay/native-addon'
import { createForwarder } from './forwarder'
import { createClusterMetrics, type ClusterMetrics } from './metrics'
import { logLimiter, WARN_EVERY_MS } from './log-limit'
import { advertisedAddress, resolveClusterOptions, type ClusterOptions, type PeerTlsOptions, type ResolvedClusterOptions } from './options'
import { closePeerServer, createPeerServer, listenPeer } from './peer-server'
import { PeerTokens } from './peer-token'
import { Presence } from './presence'
import { openRedis, type RedisConnection, type RedisSource } from './redis-connection'
import { RedisRegistry } from './redis-registry'
import { REDIS_DB_RULE, redisDbProblem } from './redis-url'
import { RedisReplayCache } from './redis-replay-cache'
import { RedisThrottleStore } from './redis-throttle-store'

/** What the relay lends the cluster once its parking lot exists. */
export interface ClusterAttachment {
  lot: ParkingLot
  splices: Set<SplicedPair>
  spliceIdleTimeout: number
  lingerTimeout?: number
  /** The plugin's `splice` option: the data path of pairs handed over to another node. */
  splice?: SplicePath
  relayMetrics: RendezvousMetrics
  isClosing: () => boolean
  metrics: PromRegistry | undefined
}

/** Cluster mode as the plugin sees it. */
export interface ClusterNode {
  nodeId: string
  registry: RedisRegistry
  replayCache: RedisReplayCache
  throttleStore: RedisThrottleStore
  /** Redis answers and the ID mirror is fresh: what a readiness probe should report. */
  reachable: () => boolean
  /** host:port of the peer listener as published, once started. */
  peerAddress: () => string | undefined
  /** host:port the peer listener is bound to, once started: --advertise may name another. */
  peerListening: () => string | undefined
  /** The parked count for `id` changed on this node. */
  parkedChanged: (id: string) => void
  /** Starts the peer listener and the heartbeat; returns where the relay finds sockets parked elsewhere. */
  start: (attachment: ClusterAttachment) => Promise<RemoteSource>
  /**
   * Replaces the peer link's TLS material (a renewed certificate, key or CA):
   * links opened from now on, both ways, use it; open ones keep their session.
   * The link keeps its kind: a node started without TLS throws.
   */
  setPeerTls: (tls: PeerTlsOptions) => void
  /** Leaves the map and stops the peer listener; links already spliced are aborted with the relay's splices. */
  close: () => Promise<void>
}

/** `maxKept`: accepted tokens each node keeps to write back to a Redis that lost them (the replayCacheSize option). */
export async function openCluster (redis: RedisSource, options: ClusterOptions | undefined, log: FastifyBaseLogger, maxKept?: number): Promise<ClusterNode> {
  const o = resolveClusterOptions(options)
  // Only the offending part is shown: the URL may hold a password.
  const badDb = typeof redis === 'string' ? redisDbProblem(redis) : undefined
  if (badDb !== undefined) throw new RendezvousOptionError(`redis must be a URL ${REDIS_DB_RULE}, got ${badDb}`)
  const conn = openRedis(redis)
  const stores = { keyPrefix: o.keyPrefix, commandTimeout: o.commandTimeout }
  // The registry's freshness, not just Redis's: a CONNECT must not be accepted for an ID the Redis there now may not hold,
  // nor before the tokens accepted here are given back to it (the registry's catch-up after a loss writes them).
  const replayCache: RedisReplayCache = new RedisReplayCache(conn, { ...stores, usable: (): boolean => registry.reachable(), maxKept })
  const registry: RedisRegistry = new RedisRegistry(conn, { ...stores, resyncInterval: o.resyncInterval, onCatchUp: async (): Promise<void> => await replayCache.writeBack() })
  // Whatever fails while starting must not leave a reconnecting client behind to hold the process open.
  try {
    await conn.connect(o.connectTimeout)
    await registry.ready()
    // One line when Redis is lost and one when it is back; the requests refused meanwhile are counted, not logged one by one.
    const redisLog = log.child({ node: o.nodeId })
    conn.watchLiveness(o.heartbeat, o.commandTimeout, (up, why) => {
      if (up) redisLog.info('Redis is reachable again')
      else redisLog.warn({ reason: why }, 'lost Redis: what needs it is refused with 503 until it is back')
    }, why => { redisLog.warn({ reason: why }, 'a connection to Redis failed; retrying') })
  } catch (err) {
    await replayCache.close()
    await registry.close()
    await conn.close()
    throw new RedisUnreachableError((err as Error).message)
  }
  let presence: Presence | undefined
  let metrics: ClusterMetrics | undefined
  let peer: Server | undefined
  let address: string | undefined
  let listening: string | undefined
  return {
    nodeId: o.nodeId,
    registry,
    replayCache,
    throttleStore: new RedisThrottleStore(conn, stores),
    reachable: () => registry.reachable(),
    peerAddress: () => address,
    peerListening: () => listening,
    parkedChanged: id => presence?.changed(id),
    start: async (a) => {
      try {
        metrics = createClusterMetrics(a.metrics, () => registry.reachable())
        const started = await startNode(conn, o, registry, a, metrics, log, server => { peer = server })
        ;({ presence, address, listening } = started)
        return started.remote
      } catch (err) {
        metrics?.close()
        if (peer !== undefined) await closePeerServer(peer)
        await replayCache.close()
        await registry.close()
        await conn.close()
        throw err
      }
    },
    setPeerTls: next => {
      const current = o.peerTls
      if (current === undefined || (current.server === undefined) !== (next.server === undefined) || (current.client === undefined) !== (next.client === undefined)) {
        throw new RendezvousOptionError('cluster peer TLS can only be replaced by the same parts (server, client) the node started with')
      }
      if (peer instanceof TlsServer && next.server !== undefined) peer.setSecureContext(next.server)
      // The forwarder reads o.peerTls at each dial, and a listener not yet created starts with it.
      o.peerTls = next
    },
    close: async () => {
      metrics?.close()
      await presence?.stop()
      if (peer !== undefined) await closePeerServer(peer)
      // Also when the app gave its own replay cache, and this one was never used: its sweep timer goes.
      await replayCache.close()
      await conn.close()
    }
  }
}

async function startNode (conn: RedisConnection, o: ResolvedClusterOptions, registry: RedisRegistry, a: ClusterAttachment, metrics: ClusterMetrics, log: FastifyBaseLogger, listening: (peer: Server) => void) {
  const clusterLog = log.child({ node: o.nodeId })
  const tokens = new PeerTokens(o.secret)
  const peer = createPeerServer({
    nodeId: o.nodeId,
    tokens,
    lot: a.lot,
    metrics,
    log: clusterLog,
    splices: a.splices,
    spliceIdleTimeout: a.spliceIdleTimeout,
    lingerTimeout: a.lingerTimeout,
    splice: a.splice,
    requestTimeout: o.forwardTimeout,
    relayMetrics: a.relayMetrics,
    isClosing: a.isClosing,
    tls: o.peerTls?.server
  })
  listening(peer)
  const bound = await listenPeer(peer, o.peerHost, o.peerPort)
  const address = advertisedAddress(o, bound.port)
  const presence = new Presence(conn, {
    nodeId: o.nodeId,
    address,
    keyPrefix: o.keyPrefix,
    ttl: o.presenceTtl,
    heartbeat: o.heartbeat,
    commandTimeout: o.commandTimeout,
    parkedFor: id => a.lot.parkedFor(id),
    onClash: advertiseClash(clusterLog, address)
  })
  await presence.start()
  const boundAt = `${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}`
  // `peer` names another node in cluster lines; this one's own addresses are `address` (as published) and `listening`.
  clusterLog.info({ address, listening: boundAt }, 'joined the cluster')
  const remote = createForwarder({
    presence,
    tokens,
    metrics,
    log: clusterLog,
    reachable: () => registry.reachable(),
    timeout: o.forwardTimeout,
    retryInterval: o.retryInterval,
    tls: () => o.peerTls?.client
  })
  return { presence, address, listening: boundAt, remote }
}

/**
 * Two live nodes that publish one peer address (a copied --advertise): the
 * other nodes dial one of them for both, and what the other holds cannot
 * be forwarded (each ask is answered 421). Both nodes see it, each naming
 * the other, as an error once a minute while it lasts.
 */
function advertiseClash (log: FastifyBaseLogger, address: string): (other: string) => void {
  const warnNow = logLimiter(WARN_EVERY_MS)
  return other => {
    const level = warnNow(other) ? 'error' : 'debug'
    log[level]({ address, peer: other }, 'another live node advertises the same peer address as this one: other nodes cannot reach what one of the two holds; give each node its own --advertise (cluster.advertise)')
  }
}
