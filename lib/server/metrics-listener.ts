import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import { QuietRequestLog } from './request-log'
import type { Registry as PromRegistry } from 'prom-client'
import { capOwnListener, listenWith, OWN_LISTENER_TIMEOUTS } from '../listen-own'
import { clientErrorHandler } from '../http/client-error'
import { loggedPath } from '../http/log-text'
import { refuse } from '../http/refusals'

/** Serves GET `path` with the registry's Prometheus text. */
export function addMetricsRoute (app: FastifyInstance, path: string, registry: PromRegistry): void {
  // Scrapes come every few seconds; at info level they would drown the log.
  app.get(path, { logLevel: 'warn' }, async (_request, reply) => {
    reply.type(registry.contentType)
    return await registry.metrics()
  })
}

// GET, and the HEAD Fastify adds to it: the listener serves nothing else.
const ALLOW = 'GET, HEAD'
const NOT_ALLOWED = 'the metrics listener serves GET and HEAD only'

/**
 * A listener of its own for scrapes, so that the public port need not serve
 * metrics: it starts when the app is ready and closes with it.
 */
export function attachMetricsListener (app: FastifyInstance, at: { host: string, port: number }, path: string, registry: PromRegistry): FastifyInstance {
  const scrape = fastify({ loggerInstance: app.log.child({ listener: 'metrics' }), logController: new QuietRequestLog(), forceCloseConnections: true, clientErrorHandler, ...OWN_LISTENER_TIMEOUTS }) as unknown as FastifyInstance
  capOwnListener(scrape)
  addMetricsRoute(scrape, path, registry)
  // Fastify's own would log its whole URL, query and userinfo included, and answer in JSON.
  scrape.setNotFoundHandler(async (request, reply) => {
    const allowed = request.method === 'GET' || request.method === 'HEAD'
    const status = allowed ? 404 : 405
    request.log.info({ status, method: request.method, url: loggedPath(request.url) }, 'metrics request refused')
    if (!allowed) reply.header('Allow', ALLOW)
    return await reply.code(status).type('text/plain; charset=utf-8').send(allowed ? `no such path: metrics are at ${path}\n` : `${NOT_ALLOWED}\n`)
  })
  scrape.server.on('connect', answerConnect(scrape.log))
  listenWith(app, scrape, 'metrics', at)
  return scrape
}

/**
 * Node hands CONNECT to the server's 'connect' event, never to Fastify, and
 * closes the socket without a word when nothing listens: a misdirected agent
 * would see only a reset. Its target is not logged: it may carry a token.
 */
function answerConnect (log: FastifyBaseLogger): (request: IncomingMessage, socket: Duplex) => void {
  return (_request, socket) => {
    log.info({ status: 405, method: 'CONNECT' }, 'metrics request refused')
    refuse(socket, { status: 405, message: NOT_ALLOWED, headers: { Allow: ALLOW } })
  }
}
