import type { Socket } from 'node:net'
import type { FastifyBaseLogger, FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify'
import { answeredBeforeBody } from '../http/client-error'
import { challengeHeader, refuse, type Refusal } from '../http/refusals'
import { loggedUrl } from '../http/request-summary'
import type { RendezvousMetrics } from './metrics'
import { kTruncated, kUnknownId } from './symbols'
import { nameHash } from './log-ids'
import { refusalLevel, type RefusalLevel } from './log-limit'
import { normaliseAddress, type AuthThrottle } from './auth-throttle'
import { lingerWhenClosed } from './handoff'
import { isThrottleStoreFailure } from './throttle-store-watch'

/** Answers a request that no route handles; see challengeHook. */
export type AnswerUnrouted = (request: FastifyRequest, reply: FastifyReply) => void

/**
 * Requests that reach Fastify carry no usable rendezvous credential. Those
 * no route handles are challenged, or told that the ID they named is unknown.
 */
export function unroutedAnswer (realm: string, metrics: RendezvousMetrics, probes: AuthThrottle | undefined, limits: { closing: () => boolean, retryAfter: number, lingerTimeout: number }, log: FastifyBaseLogger): AnswerUnrouted {
  const level = refusalLevel(probes === undefined ? undefined : address => probes.sourceOf(address), { log, side: 'mobile' })
  return function answerUnrouted (request, reply) {
    inTurn(request, reply, () => { answerNow(request, reply) }, why => {
      reply.hijack()
      log.debug(lineFields(request), `pipelined request dropped: ${why}`)
    })
  }

  function answerNow (request: FastifyRequest, reply: FastifyReply): void {
    // Every answer here may end the connection (a refusal always does; a challenge to an HTTP/1.0 client or to
    // `Connection: close`), possibly while the client is still sending the body of the request it answers.
    lingerWhenClosed(request.raw.socket, limits.lingerTimeout)
    reply.raw.once('finish', () => { answeredBeforeBody(request.raw) })
    // A server going down answers what would have been a challenge as it answers a rendezvous: come back later.
    if (limits.closing()) {
      metrics.request('shutting_down')
      log.info({ ...lineFields(request), outcome: 'shutting_down', status: 503 }, 'rendezvous request refused')
      refuseOnSocket(request, reply, { status: 503, message: 'shutting down', retryAfter: limits.retryAfter }, limits.lingerTimeout)
      return
    }
    const unknown = (request.raw as { [kUnknownId]?: string })[kUnknownId]
    if (unknown !== undefined) {
      answerUnknownId(request, reply, unknown, { metrics, probes, log, level, lingerTimeout: limits.lingerTimeout, retryAfter: limits.retryAfter }).catch(err => { reply.send(err) })
      return
    }
    // Node keeps only so many fields: the credential may have been among those it dropped, and a challenge would send
    // the client round again with the same head. A relayed head that long gets this answer too (mobile-decide.ts).
    if ((request.raw as { [kTruncated]?: true })[kTruncated] === true) {
      metrics.request('bad_head')
      log[level('bad_head', normaliseAddress(request.socket.remoteAddress))]({ ...lineFields(request), outcome: 'bad_head', status: 431 }, 'rendezvous request refused')
      refuseOnSocket(request, reply, { status: 431, message: 'too many header fields' }, limits.lingerTimeout)
      return
    }
    metrics.request('challenged')
    log.debug(lineFields(request), 'challenged')
    // Node drops what a client pipelined behind an Upgrade request that nobody took: closing says so, where
    // keeping the connection would leave those requests unanswered.
    if (request.headers.upgrade !== undefined) reply.header('Connection', 'close')
    // Set on the raw response so the field name goes out in the spec's case; some field clients match it literally.
    reply.raw.setHeader('WWW-Authenticate', challengeHeader(realm))
    reply.code(401).type('text/plain; charset=utf-8').send('authenticate with the hidden server\'s ID as the user name\n')
  }
}

/** Per connection, what drops each request queued behind its current answer (see inTurn). */
const queued = new WeakMap<Socket, Set<(why: string) => void>>()

/**
 * Runs `answer` once this request's answer is the connection's next one:
 * Node queues the answers of pipelined requests, and hands a response its
 * socket when the one before it is out. A request queued behind an answer
 * that closed the connection (a refusal, Connection: close) never gets its
 * turn, and neither does one whose connection closes first: nobody answers
 * it, so nothing may count, log or throttle it as if it had been. It gets
 * `drop` instead, once it is known, as does one that arrives after such an
 * answer was written.
 */
function inTurn (request: FastifyRequest, reply: FastifyReply, answer: () => void, drop: (why: string) => void): void {
  if (reply.raw.socket !== null) {
    answer()
    return
  }
  const socket = request.raw.socket
  if (socket.writableEnded || socket.destroyed) {
    drop('an earlier answer closed the connection')
    return
  }
  let waiting = queued.get(socket)
  if (waiting === undefined) {
    const set = new Set<(why: string) => void>()
    queued.set(socket, set)
    // One listener per connection, however many requests are queued on it.
    socket.once('close', () => { dropQueued(socket, 'the connection closed before its turn') })
    waiting = set
  }
  const dropThis = (why: string): void => {
    reply.raw.removeListener('socket', onSocket)
    drop(why)
  }
  const onSocket = (): void => {
    waiting.delete(dropThis)
    answer()
  }
  waiting.add(dropThis)
  reply.raw.once('socket', onSocket)
}

/** Drops every request queued on the connection, which no answer will reach: one written on it closed it, or it closed. */
function dropQueued (socket: Socket, why: string): void {
  const waiting = queued.get(socket)
  if (waiting === undefined) return
  queued.delete(socket)
  for (const drop of waiting) drop(why)
}

/**
 * The fields of the mobile side's lines (mobile-side.ts), logged on the
 * plugin's logger rather than the request's, so that these lines carry
 * `plugin` like the others. reqId is Fastify's request id, which ties them
 * to Fastify's own lines; serve makes it of the same form as the others.
 */
function lineFields (request: FastifyRequest): { side: 'mobile', reqId: string, address: string | undefined, method: string, url: string } {
  return { side: 'mobile', reqId: request.id, address: normaliseAddress(request.socket.remoteAddress), method: request.method, url: loggedUrl(request.url) }
}

/** The app's own routes answer as usual; only requests no route matches get `answer`. */
export function challengeHook (answer: AnswerUnrouted): onRequestHookHandler {
  return function rendezvousChallenge (request, reply, done) {
    if (!request.is404) {
      done()
      return
    }
    answer(request, reply)
  }
}

/**
 * 404 for an ID nobody provisioned (docs/protocol.md, the mobile side's answers),
 * counted per client address like failed CONNECTs: once past the limit the
 * address gets 429 for a cool-off, for known IDs too (see the mobile side),
 * so IDs cannot be enumerated at full speed.
 */
async function answerUnknownId (request: FastifyRequest, reply: FastifyReply, id: string, { metrics, probes, log, level, lingerTimeout, retryAfter }: { metrics: RendezvousMetrics, probes: AuthThrottle | undefined, log: FastifyBaseLogger, level: RefusalLevel, lingerTimeout: number, retryAfter: number }): Promise<void> {
  const address = request.socket.remoteAddress ?? 'unknown'
  // Counted before it is answered, so that probes sent at once cannot all be answered 404 before any is counted.
  // The probe that reaches the limit still gets its 404; the cool-off is for the ones after it.
  let coolOff: number
  try {
    coolOff = probes === undefined ? 0 : await probes.failFirst(address, '')
  } catch (err) {
    if (!isThrottleStoreFailure(err)) throw err
    // A probe that cannot be counted is not answered 404, and a known ID's request gets these same bytes (mobile-side.ts).
    metrics.request('throttle_unavailable')
    log.info({ ...lineFields(request), idHash: nameHash(id), outcome: 'throttle_unavailable', status: 503 }, 'rendezvous request refused')
    refuseOnSocket(request, reply, { status: 503, message: 'try again later', retryAfter }, lingerTimeout)
    return
  }
  if (coolOff > 0) {
    metrics.request('throttled')
    log[level('throttled', address)]({ ...lineFields(request), idHash: nameHash(id), outcome: 'throttled', status: 429 }, 'rendezvous request refused')
    refuseOnSocket(request, reply, { status: 429, message: 'too many requests for unknown IDs', retryAfter: coolOff }, lingerTimeout)
    return
  }
  metrics.request('unknown_id')
  log.info({ ...lineFields(request), idHash: nameHash(id), outcome: 'unknown_id', status: 404 }, 'rendezvous request refused')
  refuseOnSocket(request, reply, { status: 404, message: 'no hidden server has this ID' }, lingerTimeout)
}

/**
 * Writes a refusal on the connection itself, as the relay writes those of
 * the sockets it took (mobile-side.ts): the same bytes, the same lingering
 * close. During a cool-off a known ID's 429 comes from there and an unknown
 * one's from here, so any difference would tell the IDs apart. Node's
 * response is left unused: the app's hooks that ran before this one
 * (helmet's, say) set their headers on it, or wrapped its methods.
 */
function refuseOnSocket (request: FastifyRequest, reply: FastifyReply, refusal: Refusal, lingerMs: number): void {
  reply.hijack()
  // Node never finishes this response, so it would not drop the body for us; unread, it would stall the connection.
  request.raw.resume()
  const answer = (socket: Socket): void => {
    refuse(socket, request.method === 'HEAD' ? { ...refusal, headOnly: true } : refusal, lingerMs)
    answeredBeforeBody(request.raw)
    // This answer closes the connection: Node never hands those behind it their turn.
    dropQueued(socket, 'an earlier answer closed the connection')
  }
  // Answered in its turn (inTurn), the response holds the connection.
  answer(reply.raw.socket ?? request.raw.socket)
}
