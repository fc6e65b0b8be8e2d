import { Server as HttpServer } from 'node:http'
import { Server as HttpsServer } from 'node:https'
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import { Registry as PromRegistry } from 'prom-client'
import { openCluster } from './cluster/cluster'
import type { Decorator } from './decorator'
import { RendezvousOptionError } from './errors'
import { appMetricsRegistry, attachOperations } from './operations'
import { resolveOptions, type RendezvousOptions } from './options'
import { assembleRelay } from './relay-assembly'
import { challengeHook } from './relay/challenge'
import { checkMetricsRegistry, createMetrics } from './relay/metrics'
import { announceSplicePath } from './relay/native-addon'
import { extraServers } from './relay/server-bindings'
import { openState } from './state'

/** Wires the parts to one Fastify instance: state, relay, operations, the decorator, and the way down. */
export const plugin: FastifyPluginAsync<RendezvousOptions> = async (fastify, opts) => {
  const o = resolveOptions(opts)
  const server = http1Server(fastify)
  const log = fastify.log.child({ plugin: 'rendezvous' })
  // A child context is Object.create() of its parent; fastify-plugin hands the root itself to a plugin registered there.
  if (Object.getPrototypeOf(fastify) !== Object.prototype) {
    log.warn('fastify-rendezvous is registered inside an encapsulated plugin: its Digest challenge then answers only that plugin\'s unrouted requests, and fastify.rendezvous is not on the root instance; register it on the root (or wrap the registering plugin in fastify-plugin)')
  }
  // fastify-plugin skips encapsulation, and with it the prefix: the routes would not be where their user looks.
  if (typeof (opts as { prefix?: unknown }).prefix === 'string') {
    log.warn('fastify-rendezvous ignores the prefix it was registered with: the relay answers for the whole server; move its routes with healthPath and readyPath')
  }
  const promRegistry = o.metrics === false ? undefined : (o.metrics ?? appMetricsRegistry(fastify) ?? new PromRegistry())
  // Before anything is opened: a refusal here leaves nothing to close.
  checkMetricsRegistry(promRegistry)
  announceSplicePath(o.splice, log)
  const cluster = o.redis === undefined ? undefined : await openCluster(o.redis, o.cluster, log, o.replayCacheSize)
  const state = await openState(o, cluster, log)
  const metrics = createMetrics(promRegistry ?? false)
  const underPressure = (): boolean => {
    const check = (fastify as unknown as { isUnderPressure?: () => boolean }).isUnderPressure
    return typeof check === 'function' && check.call(fastify)
  }
  const reachable = (): boolean => cluster?.reachable() ?? true
  const relay = await assembleRelay(server, o, { state, cluster, metrics, promRegistry, log, underPressure })
  const { lot, splices } = relay
  const operations = attachOperations(fastify, o, {
    registry: state.registry, lot, splices, log, promRegistry, closing: relay.closing, underPressure, reachable, journalWritable: state.journalWritable, replayCacheRoom: state.replayCacheRoom, checkReplayCache: state.checkReplayCache, checkThrottleStore: state.checkThrottleStore
  })

  fastify.addHook('onRequest', challengeHook(relay.answerUnrouted))
  fastify.decorate('rendezvous', {
    registry: state.registry,
    metrics: promRegistry,
    stats: () => ({ ...lot.size, spliced: splices.size }),
    parkedFor: (id: string) => lot.parkedFor(id.toLowerCase()),
    answerUnrouted: relay.answerUnrouted,
    perId: operations.perId,
    adminAddress: operations.adminAddress,
    reachable,
    cluster: cluster === undefined ? undefined : { nodeId: cluster.nodeId, get peerAddress () { return cluster.peerAddress() }, get peerListening () { return cluster.peerListening() }, setPeerTls: cluster.setPeerTls }
  } satisfies Decorator)

  // Fastify's second binding of `localhost` exists only once the app listens; it must relay too.
  const attached = new WeakSet<object>([server])
  fastify.addHook('onListen', function attachExtraServers (done) {
    for (const extra of extraServers(fastify)) {
      if (attached.has(extra)) continue
      attached.add(extra)
      relay.attach(extra)
    }
    done()
  })
  fastify.addHook('preClose', relay.drain)
  fastify.addHook('onClose', async () => {
    relay.uninstall()
    operations.close()
    await state.close()
    await cluster?.close()
  })
}

function http1Server (fastify: FastifyInstance): HttpServer {
  const server: unknown = fastify.server
  if (server instanceof HttpServer || server instanceof HttpsServer) return server as HttpServer
  throw new RendezvousOptionError('the rendezvous needs an HTTP/1.1 server (http or https), not HTTP/2')
}
