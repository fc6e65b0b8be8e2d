import type { AddressInfo } from 'node:net'
import fastify, { type FastifyBaseLogger, type FastifyInstance, type onRequestHookHandler } from 'fastify'
import { addAdminApi, type AdminTarget } from './api'
import type { AdminCount } from './metrics'
import { bearerCheck, bearerGuard } from './auth'
import { hostGuard, isLoopbackAddress } from './host-check'
import { AJV_OPTIONS, MAX_PARAM_LENGTH, adminErrors, badPath, dotIdsUnescaped, emptyIsNoBody, noBodyIsEmpty } from './validation'
import { PAGE_HTML, PAGE_SCRIPT } from './page'
import { SECURITY_HEADERS, adminClientErrors, answerConnect } from './raw-answers'
import { refuse } from './refusal'
import { adminLogger } from './request-log'
import { capOwnListener, OWN_LISTENER_TIMEOUTS } from '../listen-own'

export type { AdminTarget } from './api'

export interface AdminListenerOptions {
  host: string
  port: number
  /** A function is asked on each request (a token reread on SIGHUP). */
  token: string | (() => string)
  target: AdminTarget
  log: FastifyBaseLogger
  /** Counts every answer (rendezvous_admin_requests_total). */
  count: AdminCount
}

// The page and its script: public, they hold nothing. Every other route needs the bearer token.
const PAGE_ROUTES: ReadonlySet<string> = new Set(['/', '/admin.js'])

/**
 * The admin listener: its own HTTP server on its own address, so the public
 * port never exposes it. The page and its script are public (they hold
 * nothing); every other route needs the bearer token.
 */
export function createAdminServer (opts: AdminListenerOptions): FastifyInstance {
  const log = adminLogger(opts.log)
  const host = hostGuard(() => loopbackBind())
  const check = bearerCheck(opts.token)
  const app = fastify({
    loggerInstance: log,
    bodyLimit: 16 * 1024,
    forceCloseConnections: true,
    // Node's empty 400 to an HTTP/1.1 request without Host would be neither JSON nor counted: hostGuard answers it.
    http: { requireHostHeader: false },
    ...OWN_LISTENER_TIMEOUTS,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    rewriteUrl: dotIdsUnescaped,
    ajv: { customOptions: AJV_OPTIONS },
    // A path the router could not read is refused only once the Host and the token are known good: 421, 401, then 400.
    frameworkErrors: badPath(both(host, check), opts.count),
    // Fastify's own logs the parser's error whole, with the refused bytes: the bearer token among them.
    clientErrorHandler: adminClientErrors(log, opts.count)
  }) as unknown as FastifyInstance
  let loopback: boolean | undefined
  const loopbackBind = (): boolean => {
    const bound = adminAddress(app)?.address
    if (bound === undefined) return isLoopbackAddress(opts.host)
    loopback ??= isLoopbackAddress(bound)
    return loopback
  }
  capOwnListener(app)
  app.server.on('connect', answerConnect(log, opts.count))
  app.addHook('onRequest', host)
  app.addHook('onRequest', bearerGuard(check, PAGE_ROUTES))
  // The API speaks JSON only: a text/plain body gets 415 rather than a string the routes would have to refuse.
  emptyIsNoBody(app)
  app.setErrorHandler(adminErrors())
  app.setNotFoundHandler(async (_request, reply) => await refuse(reply, 404, 'no such route'))
  app.addHook('preValidation', noBodyIsEmpty)
  // Counted as the answer goes out rather than once it has gone: a client that reads the metrics next sees it counted.
  app.addHook('onSend', async (request, reply, payload) => {
    opts.count(request.method, request.routeOptions.url, reply.statusCode)
    return payload
  })
  app.addHook('onSend', async (_request, reply) => { reply.headers(SECURITY_HEADERS) })
  app.get('/', async (_request, reply) => await reply.type('text/html; charset=utf-8').send(PAGE_HTML))
  app.get('/admin.js', async (_request, reply) => await reply.type('text/javascript; charset=utf-8').send(PAGE_SCRIPT))
  addAdminApi(app, opts.target)
  return app
}

/** Runs `second` once `first` has let the request on. */
function both (first: onRequestHookHandler, second: onRequestHookHandler): onRequestHookHandler {
  return function (request, reply, done) {
    first.call(this, request, reply, () => { second.call(this, request, reply, done) })
  }
}

/** Where a started admin listener is bound. */
export function adminAddress (app: FastifyInstance | undefined): AddressInfo | undefined {
  const address = app?.server.address()
  return address !== null && typeof address === 'object' ? address : undefined
}
