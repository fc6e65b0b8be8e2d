import type { FastifyRequest } from 'fastify'
import { loggedPath, printable } from './log-text'

/** loggedPath, for a target that may be missing. */
export function loggedUrl (url: string): string
export function loggedUrl (url: string | undefined): string | undefined
export function loggedUrl (url: string | undefined): string | undefined {
  return url === undefined ? undefined : loggedPath(url)
}

/**
 * Fastify's own summary of a request in its `req` field, as the plugin's
 * lines show a request: the URL's path only (loggedPath), and the Host as
 * printable text, since Node lets any byte from 0x80 up through in a header.
 */
export function requestSummary (request: FastifyRequest): Record<string, unknown> {
  const host = request.host as string | undefined
  return {
    method: printable(request.method),
    url: loggedPath(request.url ?? ''),
    host: host === undefined ? undefined : printable(host),
    remoteAddress: request.ip,
    remotePort: request.socket?.remotePort
  }
}
