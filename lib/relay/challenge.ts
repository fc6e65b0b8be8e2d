import type { onRequestHookHandler } from 'fastify'
import { challengeHeader } from '../http/refusals'
import type { RendezvousMetrics } from './metrics'
import { kUnknownId } from './symbols'

/**
 * Requests that reach Fastify carry no usable rendezvous credential. The
 * app's own routes answer them as usual; only those no route matches are
 * challenged, or told that the ID they named is unknown.
 */
export function challengeHook (realm: string, metrics: RendezvousMetrics): onRequestHookHandler {
  return function rendezvousChallenge (request, reply, done) {
    if (!request.is404) {
      done()
      return
    }
    if ((request.raw as { [kUnknownId]?: boolean })[kUnknownId] === true) {
      metrics.request('unknown_id')
      reply.code(404).header('connection', 'close').type('text/plain; charset=utf-8').send('no hidden server has this ID\n')
      return
    }
    metrics.request('challenged')
    // Set on the raw response so the field name goes out in the spec's case; some field clients match it literally.
    reply.raw.setHeader('WWW-Authenticate', challengeHeader(realm))
    reply.code(401).type('text/plain; charset=utf-8').send('authenticate with the hidden server\'s ID as the user name\n')
  }
}
