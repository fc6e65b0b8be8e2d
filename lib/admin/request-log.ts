import type { FastifyBaseLogger, FastifyRequest } from 'fastify'

/**
 * What the admin listener's lines say of a request: Fastify's own summary,
 * with the URL's path only. A client that sends the token in the query
 * (`/api/ids?access_token=...`, as some OAuth tools do) is refused, and
 * Fastify's `incoming request` line would otherwise write the token out.
 */
export function adminRequestSummary (request: FastifyRequest): Record<string, unknown> {
  const url = request.url ?? ''
  const query = url.indexOf('?')
  return {
    method: request.method,
    url: query === -1 ? url : url.slice(0, query),
    host: request.host,
    remoteAddress: request.ip,
    remotePort: request.socket?.remotePort
  }
}

/** A child of `log` whose `req` serializer is adminRequestSummary, for every line the admin listener writes. */
export function adminLogger (log: FastifyBaseLogger): FastifyBaseLogger {
  return log.child({}, { serializers: { req: adminRequestSummary } })
}
