import type { FastifyBaseLogger } from 'fastify'
import { requestSummary } from '../http/request-summary'

/**
 * A child of `log` whose `req` serializer keeps the URL's path only, for
 * every line the admin listener writes. A client that sends the token in
 * the query (`/api/ids?access_token=...`) is refused, and Fastify's
 * `incoming request` line would otherwise write the token out.
 */
export function adminLogger (log: FastifyBaseLogger): FastifyBaseLogger {
  return log.child({}, { serializers: { req: requestSummary } })
}
