import type { AddressInfo } from 'node:net'
import fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import { addAdminApi, type AdminTarget } from './api'
import type { AdminCount } from './metrics'
import { bearerCheck, bearerGuard } from './auth'
import { AJV_OPTIONS, MAX_PARAM_LENGTH, adminErrors, badPath, noBodyIsEmpty } from './validation'
import { PAGE_HTML, PAGE_SCRIPT } from './page'
import { refuse } from './refusal'
import { clientErrorHandler } from '../http/client-error'

export type { AdminTarget } from './api'

export interface AdminListenerOptions {
  host: string
  port: number
  token: string
  target: AdminTarget
  log: FastifyBaseLogger
  /** Counts every answer (rendezvous_admin_requests_total). */
  count: AdminCount
}

// The page and its script: public, they hold nothing. Every other route needs the bearer token.
const PAGE_ROUTES: ReadonlySet<string> = new Set(['/', '/admin.js'])

// The page loads only its own script and talks only to its own origin.
const CSP = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/**
 * The admin listener: its own HTTP server on its own address, so the public
 * port never exposes it. The page and its script are public (they hold
 * nothing); every other route needs the bearer token.
 */
export function createAdminServer (opts: AdminListenerOptions): FastifyInstance {
  const check = bearerCheck(opts.token)
  const app = fastify({
    loggerInstance: opts.log,
    bodyLimit: 16 * 1024,
    forceCloseConnections: true,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    ajv: { customOptions: AJV_OPTIONS },
    // A path the router could not read is refused only once the token is known good: 401 first, then 400.
    frameworkErrors: badPath(check, opts.count),
    // Fastify's own logs the parser's error whole, with the refused bytes: the bearer token among them.
    clientErrorHandler
  }) as unknown as FastifyInstance
  app.addHook('onRequest', bearerGuard(check, PAGE_ROUTES))
  // The API speaks JSON only: a text/plain body gets 415 rather than a string the routes would have to refuse.
  app.removeContentTypeParser('text/plain')
  app.setErrorHandler(adminErrors)
  app.setNotFoundHandler(async (_request, reply) => await refuse(reply, 404, 'no such route'))
  app.addHook('preValidation', noBodyIsEmpty)
  // Counted as the answer goes out rather than once it has gone: a client that reads the metrics next sees it counted.
  app.addHook('onSend', async (request, reply, payload) => {
    opts.count(request.method, request.routeOptions.url, reply.statusCode)
    return payload
  })
  app.addHook('onSend', async (_request, reply) => {
    reply.header('cache-control', 'no-store').header('x-content-type-options', 'nosniff').header('content-security-policy', CSP)
  })
  app.get('/', async (_request, reply) => await reply.type('text/html; charset=utf-8').send(PAGE_HTML))
  app.get('/admin.js', async (_request, reply) => await reply.type('text/javascript; charset=utf-8').send(PAGE_SCRIPT))
  addAdminApi(app, opts.target)
  return app
}

/** Where a started admin listener is bound. */
export function adminAddress (app: FastifyInstance | undefined): AddressInfo | undefined {
  const address = app?.server.address()
  return address !== null && typeof address === 'object' ? address : undefined
}
