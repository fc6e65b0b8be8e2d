import type { FastifyRequest } from 'fastify'

/**
 * A request target as log lines show it: its path, without the query. A
 * query can carry what must not be logged: a token (`?access_token=`, as
 * some OAuth tools send it), or in `?rendezvous=` a name that is no ID but
 * an app's key typed into the wrong field.
 */
export function loggedUrl (url: string): string
export function loggedUrl (url: string | undefined): string | undefined
export function loggedUrl (url: string | undefined): string | undefined {
  if (url === undefined) return undefined
  const query = url.indexOf('?')
  return query === -1 ? url : url.slice(0, query)
}

/** Fastify's own summary of a request in its `req` field, with the URL's path only (loggedUrl). */
export function requestSummary (request: FastifyRequest): Record<string, unknown> {
  return {
    method: request.method,
    url: loggedUrl(request.url ?? ''),
    host: request.host,
    remoteAddress: request.ip,
    remotePort: request.socket?.remotePort
  }
}
