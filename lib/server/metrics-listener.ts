import fastify, { type FastifyInstance } from 'fastify'
import { QuietRequestLog } from './request-log'
import type { Registry as PromRegistry } from 'prom-client'
import { capOwnListener, listenWith, OWN_LISTENER_TIMEOUTS } from '../listen-own'
import { clientErrorHandler } from '../http/client-error'

/** Serves GET `path` with the registry's Prometheus text. */
export function addMetricsRoute (app: FastifyInstance, path: string, registry: PromRegistry): void {
  // Scrapes come every few seconds; at info level they would drown the log.
  app.get(path, { logLevel: 'warn' }, async (_request, reply) => {
    reply.type(registry.contentType)
    return await registry.metrics()
  })
}

/**
 * A listener of its own for scrapes, so that the public port need not serve
 * metrics: it starts when the app is ready and closes with it.
 */
export function attachMetricsListener (app: FastifyInstance, at: { host: string, port: number }, path: string, registry: PromRegistry): FastifyInstance {
  const scrape = fastify({ loggerInstance: app.log.child({ listener: 'metrics' }), logController: new QuietRequestLog(), forceCloseConnections: true, clientErrorHandler, ...OWN_LISTENER_TIMEOUTS }) as unknown as FastifyInstance
  capOwnListener(scrape)
  addMetricsRoute(scrape, path, registry)
  listenWith(app, scrape, 'metrics', at)
  return scrape
}
