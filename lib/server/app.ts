import type { AddressInfo, Socket } from 'node:net'
import type { Server as HttpServer } from 'node:http'
import fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import pretty from 'pino-pretty'
import { Registry as PromRegistry, collectDefaultMetrics } from 'prom-client'
import rendezvous, { type RendezvousOptions } from '../index'
import { QuietRequestLog } from './request-log'
import { clientErrorHandler } from '../http/client-error'
import { lacksHost, NEEDS_HOST } from '../http/refusals'
import { requestSummary } from '../http/request-summary'
import { frameworkErrors } from '../relay/framework-errors'
import { logId } from '../relay/log-ids'
import { takeHostCheck } from '../relay/handoff'
import { FileRegistry } from '../registry/file-registry'
import type { PeerTlsMaterial, ServeOptions } from './serve-options'
import { openFileLimit, serveMaxConnections } from './open-files'
import type { PeerTlsOptions } from '../cluster/options'
import { addMetricsRoute, attachMetricsListener } from './metrics-listener'
import { extraServers } from '../relay/server-bindings'

export type { ServeOptions } from './serve-options'

const kSockets = Symbol('rendezvous.serverSockets')
const kMetricsListener = Symbol('rendezvous.metricsListener')

/** Where the separate metrics listener is bound, when serve has one. */
export function metricsListenerAddress (app: FastifyInstance): AddressInfo | undefined {
  const address = (app as unknown as { [kMetricsListener]?: FastifyInstance })[kMetricsListener]?.server.address()
  return address !== null && typeof address === 'object' ? address : undefined
}

interface Tracked { [kSockets]?: Set<Socket> }

const DEFAULT_CLOSE_GRACE = 5_000

/** The standalone server: the plugin on a file registry, with /healthz, /readyz and /metrics. Not yet listening. */
export async function buildServer (opts: ServeOptions): Promise<FastifyInstance> {
  const metrics = opts.metricsPath === false ? undefined : createMetricsRegistry()
  const app = fastify(serverOptions(opts)) as unknown as FastifyInstance
  const sockets = trackSockets(app)
  serveOn(app.server, sockets)
  // `--host localhost` binds a second server once the app listens (127.0.0.1 and ::1): it gets the same handling.
  app.addHook('onListen', function (done) {
    for (const extra of extraServers(app)) serveOn(extra, sockets)
    done()
  })

  const registry = opts.cluster === undefined ? new FileRegistry({ dataDir: opts.dataDir }) : undefined
  // Added before the plugin so that it runs after the plugin's own onClose: avvio closes in reverse order.
  app.addHook('onClose', async () => { await registry?.close() })
  await app.register(rendezvous, {
    healthPath: '/healthz',
    readyPath: '/readyz',
    maxConnections: serveMaxConnections(openFileLimit()),
    ...opts.plugin,
    registry,
    // The registry is built above; the plugin keeps its replay journal in the same dir.
    ...(registry === undefined ? {} : { dataDir: opts.dataDir }),
    ...clusterOptions(opts),
    waitTimeout: opts.waitTimeout,
    ...opts.limits,
    metrics: metrics ?? false,
    closeGracePeriod: opts.closeGracePeriod ?? DEFAULT_CLOSE_GRACE
  })

  if (metrics !== undefined && opts.metricsPath !== false) {
    if (opts.metricsListen === undefined) addMetricsRoute(app, opts.metricsPath, metrics)
    else app.decorate(kMetricsListener, refuseHostless(attachMetricsListener(app, opts.metricsListen, opts.metricsPath, metrics)))
  }
  return app
}

/**
 * The metrics listener's answer to an HTTP/1.1 request without Host, in
 * place of Node's own (its requireHostHeader), an empty 400 that nothing
 * logged: a 400 in plain words that closes the connection, and a line.
 */
function refuseHostless (scrape: FastifyInstance): FastifyInstance {
  takeHostCheck(scrape.server)
  scrape.addHook('onRequest', async (request, reply) => {
    if (!lacksHost(request.raw)) return
    // The listener's log, not the request's: scrapes log at warn (addMetricsRoute), and this is no scrape.
    scrape.log.info({ status: 400, method: request.method, reqId: request.id }, 'metrics request refused')
    return await reply.code(400).header('connection', 'close').type('text/plain; charset=utf-8').send(`${NEEDS_HOST}\n`)
  })
  return scrape
}

function clusterOptions (opts: ServeOptions): Pick<RendezvousOptions, 'redis' | 'cluster'> {
  const c = opts.cluster
  if (c === undefined) return {}
  return { redis: c.redis, cluster: { secret: c.secret, peerHost: c.peerHost, peerPort: c.peerPort, advertise: c.advertise, peerTls: c.peerTls === undefined ? undefined : peerTlsOptions(c.peerTls) } }
}

/** The peer link's TLS options, at start and on reload. Mutual TLS: the listener requires a client certificate signed by the CA, and the dialler presents its own. */
export function peerTlsOptions (m: PeerTlsMaterial): PeerTlsOptions {
  return {
    server: { cert: m.cert, key: m.key, ca: m.ca, requestCert: true, rejectUnauthorized: true },
    // Without a name the dialler checks the certificate against the host it dials (forwarder.ts).
    client: { cert: m.cert, key: m.key, ca: m.ca, ...(m.name === undefined ? {} : { servername: m.name }) }
  }
}

function serverOptions (opts: ServeOptions): FastifyServerOptions & { https?: { cert: Buffer, key: Buffer, ALPNProtocols: string[] } } {
  return {
    logger: loggerOptions(opts),
    // Node's https server offers only http/1.1 by ALPN, and a client that offers only http/1.0 (curl --http1.0) gets a TLS alert.
    ...(opts.tls === false ? {} : { https: { cert: opts.tls.cert, key: opts.tls.key, ALPNProtocols: ['http/1.1', 'http/1.0'] } }),
    // Fastify's own 503 while closing is JSON without Retry-After; the plugin answers instead (503, Retry-After,
    // Connection: close), and /readyz says shutting_down.
    return503OnClosing: false,
    logController: new QuietRequestLog(),
    // The plugin's reqIds are 16 hex digits; Fastify's own (req-1, req-2...) would restart with every process.
    genReqId: () => logId(),
    // What Node's parser refuses is answered like every other refusal, with Connection: close and a clean close.
    clientErrorHandler,
    // A path the router cannot decode may still be a hidden server's: challenged, not 400.
    frameworkErrors,
    // Parked connections are idle by design; the plugin bounds CONNECT authentication and client waits itself.
    connectionTimeout: 0,
    // Ordinary requests here are probes, scrapes and 401 challenges; a rendezvous leaves Node's parser at its head, so these never cut a relay.
    requestTimeout: 30_000,
    keepAliveTimeout: 72_000,
    forceCloseConnections: 'idle'
  }
}

function loggerOptions (opts: ServeOptions): FastifyServerOptions['logger'] {
  const destination = opts.logStream ?? process.stdout
  const stream = opts.prettyLogs === true
    ? pretty({ destination, colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' })
    : destination
  // Fastify's request lines (at debug) with the URL's path only, as the plugin's own lines have it.
  return { level: opts.logLevel, stream, serializers: { req: requestSummary } }
}

function createMetricsRegistry (): PromRegistry {
  const registry = new PromRegistry()
  // docs/plugin.md, Metrics: every metric name begins with rendezvous_, the process ones too.
  collectDefaultMetrics({ register: registry, prefix: 'rendezvous_' })
  return registry
}

// Sockets the plugin took over are invisible to Fastify's connection handling; this keeps a last-resort handle on them.
function trackSockets (app: FastifyInstance): Set<Socket> {
  const sockets = new Set<Socket>()
  ;(app as unknown as Tracked)[kSockets] = sockets
  return sockets
}

const served = new WeakSet<object>()

/** What serve adds to each of its HTTP servers, once. */
function serveOn (server: HttpServer, sockets: Set<Socket>): void {
  if (served.has(server)) return
  served.add(server)
  // One listener for every socket: a `once` closure per socket cost about 200 B of heap for each parked connection.
  function forget (this: Socket): void { sockets.delete(this) }
  server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.on('close', forget)
  })
  // Node answers `Expect: 100-continue` with a 100 before any route runs, so a client without a credential, or with
  // an unknown ID, would send its whole body to be dropped after the 100. serve's own routes take no bodies: they
  // answer at once. A relayed request never gets here: the hidden server answers its Expect itself.
  server.on('checkContinue', (req, res) => server.emit('request', req, res))
}

/**
 * Closes the app: new requests get 503, idle connections close, the plugin
 * winds down parked and spliced sockets. Whatever is still open after
 * `deadlineMs`, or once `force` resolves, is destroyed. Resolves 'closed'
 * when nothing had to be destroyed, else what cut the wait short.
 */
export async function closeServer (app: FastifyInstance, deadlineMs: number, force?: Promise<unknown>): Promise<'closed' | 'deadline' | 'forced'> {
  const closing = app.close().then(() => 'closed' as const)
  const outcome = await within(deadlineMs, closing, force)
  if (outcome === 'closed') return outcome
  app.log.warn({ outcome }, 'connections still open; destroying them')
  for (const socket of (app as unknown as Tracked)[kSockets] ?? []) socket.destroy()
  // The sockets are gone; an onClose hook that still hangs must not keep the process alive.
  await within(1_000, closing)
  return outcome
}

async function within<T> (ms: number, work: Promise<T>, force?: Promise<unknown>): Promise<T | 'deadline' | 'forced'> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<'deadline'>(resolve => { timer = setTimeout(resolve, ms, 'deadline') })
  const forced = force === undefined ? [] : [force.then(() => 'forced' as const)]
  try {
    return await Promise.race([work, deadline, ...forced])
  } finally {
    clearTimeout(timer)
  }
}

/** The default deadline of closeServer for these options: the splice grace period plus time to wind down. */
export function closeDeadline (opts: Pick<ServeOptions, 'closeGracePeriod'>): number {
  return (opts.closeGracePeriod ?? DEFAULT_CLOSE_GRACE) + 5_000
}
