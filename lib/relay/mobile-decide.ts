import type { IncomingMessage } from 'node:http'
import type { FastifyBaseLogger } from 'fastify'
import { hostCount, lacksHost, NEEDS_HOST, type Refusal } from '../http/refusals'
import { serializeHead } from '../http/head'
import { readCredential } from '../http/authorization'
import { canonicalId } from '../registry/ids'
import type { Registry } from '../registry/registry'
import type { Decide, HeadFacts, HeadersOnlyRequest } from './handoff'
import type { RequestOutcome } from './metrics'
import { kTruncated, kUnknownId } from './symbols'
import { nameHash } from './log-ids'
import { logLimiter } from './log-limit'
import { syncGet } from '../registry/sync-get'

/** What the header callback decided about a request it took from the HTTP parser. */
export type Ticket =
  | { kind: 'refuse', outcome: RequestOutcome, refusal: Refusal }
  | { kind: 'relay', id: string, head: Buffer, receivedAt: bigint }

export interface DecideDeps {
  registry: Pick<Registry, 'get' | 'stale'>
  log: FastifyBaseLogger
  retryAfter: number
}

const refusal = (outcome: RequestOutcome, status: number, message: string, retryAfter?: number): Ticket => ({ kind: 'refuse', outcome, refusal: { status, message, retryAfter } })

/**
 * Checks and serialises the head of a request for a known ID, before any
 * parked connection is taken: a head that cannot be forwarded exactly must
 * cost no hidden server its connection.
 */
function relayTicket (req: HeadersOnlyRequest, facts: HeadFacts, id: string, source: 'authorization' | 'query'): Ticket {
  // Node framed the body by fields it did not keep: the head we rebuild would frame it differently.
  if (facts.headersTruncated) return refusal('bad_head', 431, 'too many header fields')
  // RFC 9112 §3.2; Node checks this itself, but only for requests it keeps.
  if (req.httpVersionMajor === 1 && req.httpVersionMinor >= 1 && hostCount(req.rawHeaders) !== 1) {
    return refusal('bad_head', 400, NEEDS_HOST)
  }
  try {
    const head = serializeHead({ method: req.method ?? 'GET', url: req.url ?? '/', httpVersion: req.httpVersion, rawHeaders: req.rawHeaders },
      { dropAuthorization: source === 'authorization' })
    return { kind: 'relay', id, head, receivedAt: process.hrtime.bigint() }
  } catch {
    // Only a lenient parser (insecureHTTPParser) lets CR, LF or NUL this far.
    return refusal('bad_head', 400, 'the request head cannot be forwarded')
  }
}

/**
 * The mobile side's first steps, in Node's header callback: read the
 * credential, and match its user name to a provisioned ID. A request for a
 * known ID gets a ticket to relay (or a refusal of a head that cannot be
 * forwarded exactly); anything else is left to Fastify and the app.
 */
export function createDecide (deps: DecideDeps): (req: HeadersOnlyRequest, facts: HeadFacts) => Ticket | undefined {
  // A store that is down fails every request: one line a minute says so, the metrics count each one.
  const logNow = logLimiter(60_000)
  // An app's own registry can fail; thrown inside Node's header callback, that would take the whole process down.
  // The name is hashed in the line: it may be no ID at all, but an app's own credential.
  function isKnown (id: string): boolean | 'failed' {
    try {
      return syncGet(deps.registry, id) !== undefined
    } catch (err) {
      deps.log[logNow('registry') ? 'error' : 'debug']({ side: 'mobile', idHash: nameHash(id), err }, 'registry.get() failed')
      return 'failed'
    }
  }

  // Runs inside Node's header callback: synchronous, and it touches only the headers.
  function decide (req: HeadersOnlyRequest, facts: HeadFacts): Ticket | undefined {
    // Node's parser lets `HTTP/2.0` through (for the h2 preface) and refuses every other version that is not 1.x.
    if (req.httpVersionMajor !== 1) return refusal('bad_head', 400, 'malformed request')
    const credential = readCredential({ rawHeaders: req.rawHeaders, url: req.url ?? '/', upgrade: req.upgrade })
    if (credential.kind === 'none') {
      // Left to the app, which may take such a head; unrouted, it gets the 431 a relayed one would (challenge.ts).
      if (facts.headersTruncated) (req as IncomingMessage & { [kTruncated]?: true })[kTruncated] = true
      return undefined
    }
    if (credential.kind === 'invalid') return refusal('bad_credential', 400, credential.reason)
    const id = canonicalId(credential.username)
    const known = id === undefined ? false : isKnown(id)
    if (known === 'failed') return refusal('error', 500, 'internal error')
    if (known) return relayTicket(req, facts, id!, credential.source)
    // A registry cut off from its source cannot tell an unknown ID from one added meanwhile: never a wrong 404.
    if (id !== undefined && deps.registry.stale?.() === true) return refusal('cluster_unavailable', 503, 'the ID registry cannot be reached', deps.retryAfter)
    // Not ours: the app may have a route that uses Basic auth of its own; the challenge hook answers 404 otherwise.
    ;(req as IncomingMessage & { [kUnknownId]?: string })[kUnknownId] = id ?? credential.username.slice(0, 128)
    return undefined
  }
  return decide
}

/**
 * Node's own check that an HTTP/1.1 request has a Host, made in the header
 * callback instead, on a server whose check the relay turned off: Node's
 * answer is an empty chunked 400 that is neither counted nor logged, where
 * this one is the relay's 400 (bad_head), as a known ID without Host gets.
 * It covers every request Node would have refused, the app's routes
 * included, and an unknown ID gets the same answer as a known one. Like
 * Node, it lets an Upgrade through to the server's 'upgrade' listeners.
 */
export function requireHost (server: { listenerCount: (event: string) => number }, decide: Decide<Ticket>): Decide<Ticket> {
  return function decideWithHost (req, facts) {
    const ticket = decide(req, facts)
    if (ticket !== undefined || !lacksHost(req)) return ticket
    if (req.upgrade && server.listenerCount('upgrade') > 0) return undefined
    return refusal('bad_head', 400, NEEDS_HOST)
  }
}
