import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyBaseLogger } from 'fastify'
import { CONNECT_OK, refuse, type Refusal } from '../http/refusals'
import type { AuthThrottle } from './auth-throttle'
import type { ConnectOutcome, RendezvousMetrics } from './metrics'
import type { TokenVerdict } from '../tokens/verdict'
import type { ParkingLot } from './parking-lot'
import { parseConnectTarget } from '../http/connect-target'
import { shedConnectState } from './handoff'
import { kConnId } from './symbols'
import { logId } from './log-ids'

export interface HiddenSideDeps {
  verify: (id: string, token: string) => Promise<TokenVerdict>
  throttle: AuthThrottle
  lot: ParkingLot
  metrics: RendezvousMetrics
  log: FastifyBaseLogger
  limits: { maxPendingConnects: number, connectTimeout: number, retryAfter: number, lingerTimeout?: number }
  isClosing: () => boolean
  /** Registers a socket the relay owns until it is parked or refused, and how close() answers it then. */
  track: (socket: Socket, cut: () => void) => () => void
  /** Called once a CONNECT is accepted, as its socket is parked. */
  onParked?: (socket: Socket) => void
}

type Step = { refusal: Refusal, outcome: ConnectOutcome } | { id: string }

/** What every line about one CONNECT carries. */
interface LineFields { side: 'hidden', connId: string, address: string | undefined }

/** Answers hidden servers' `CONNECT uuid:ID?response=TKN`: parse, authenticate, park. */
export function createHiddenSide (deps: HiddenSideDeps): (req: IncomingMessage, socket: Socket, rest: Buffer) => void {
  const { lot, metrics, limits } = deps
  let pending = 0

  const refuseWith = (socket: Socket, outcome: ConnectOutcome, refusal: Refusal, at: LineFields): void => {
    metrics.connect(outcome)
    deps.log.info({ ...at, outcome, status: refusal.status }, 'CONNECT refused')
    // Date lets a refused agent tell a wrong secret from a clock that is off (docs/agent.md).
    refuse(socket, { ...refusal, headers: { ...refusal.headers, Date: new Date().toUTCString() } }, limits.lingerTimeout)
  }

  async function authenticate (req: IncomingMessage, socket: Socket, rest: Buffer, at: LineFields): Promise<Step> {
    if (req.httpVersionMajor !== 1) return { outcome: 'malformed_target', refusal: { status: 400, message: 'malformed request' } }
    const target = parseConnectTarget(req.url ?? '')
    if (target.kind === 'malformed') return { outcome: 'malformed_target', refusal: { status: 400, message: target.reason } }
    if (target.kind === 'not_uuid') return { outcome: 'not_uuid', refusal: { status: 400, message: target.reason } }
    if (target.kind === 'missing_token') {
      return { outcome: 'missing_token', refusal: { status: 407, message: 'missing response token', headers: { 'Proxy-Authenticate': 'rendezvous' } } }
    }
    const address = socket.remoteAddress ?? 'unknown'
    const coolOff = await deps.throttle.check(address, target.id)
    if (coolOff > 0) return { outcome: 'throttled', refusal: { status: 429, message: 'too many failed attempts', retryAfter: coolOff } }
    // The relay must not guess whose bytes these were meant to be once a client is spliced in.
    if (rest.length > 0) return { outcome: 'early_data', refusal: { status: 409, message: 'no bytes may follow the CONNECT head' } }
    const verdict = await deps.verify(target.id, target.token)
    if (!verdict.ok) {
      if (verdict.status === 503) {
        // A replay cache that cannot answer (Redis down or hung) is not one that is full: another cause, another fix.
        const outcome = verdict.reason === 'replay_cache_error' ? 'store_unavailable' : 'replay_cache_full'
        return { outcome, refusal: { status: 503, message: 'try again later', retryAfter: limits.retryAfter } }
      }
      const tripped = await deps.throttle.fail(address, target.id)
      deps.log.info({ ...at, id: target.id, reason: verdict.reason }, 'CONNECT authentication failed')
      // The failure that reaches the limit is still answered as a failure: the cool-off is for the attempts after it.
      if (tripped > 0) deps.log.warn({ ...at, id: target.id, coolOff: tripped }, 'too many failed CONNECTs; cooling off')
      // Unknown IDs and bad tokens get the same answer, so IDs cannot be probed.
      return { outcome: 'unauthorized', refusal: { status: 401, message: 'authentication failed' } }
    }
    return { id: target.id }
  }

  // One function for every socket: a closure per socket would keep this CONNECT's logger and timer alive for as long as it stays parked.
  function onSocketError (this: Socket, err: Error): void {
    deps.log.debug({ err, side: 'hidden', address: this.remoteAddress }, 'hidden-side socket error')
  }

  return function onConnect (req, socket, rest) {
    const connId = logId()
    // Fields rather than a child logger: most CONNECTs log one line, and a child per CONNECT cost more than that line.
    const at: LineFields = { side: 'hidden', connId, address: socket.remoteAddress }
    socket.on('error', onSocketError)
    if (deps.isClosing()) {
      refuseWith(socket, 'shutting_down', { status: 503, message: 'shutting down', retryAfter: limits.retryAfter }, at)
      return
    }
    if (pending >= limits.maxPendingConnects) {
      refuseWith(socket, 'busy', { status: 503, message: 'too many pending connections', retryAfter: limits.retryAfter }, at)
      return
    }
    pending++
    // Answered before its check ended: timed out, or cut by a shutdown, which answers it as it answers any CONNECT then.
    let answered = false
    const untrack = deps.track(socket, () => {
      answered = true
      refuseWith(socket, 'shutting_down', { status: 503, message: 'shutting down', retryAfter: limits.retryAfter }, at)
    })
    const timer = setTimeout(() => {
      answered = true
      refuseWith(socket, 'timeout', { status: 408, message: 'authentication took too long' }, at)
    }, limits.connectTimeout)
    authenticate(req, socket, rest, at).then(step => {
      if (answered || socket.destroyed) return
      if ('refusal' in step) {
        refuseWith(socket, step.outcome, step.refusal, at)
      } else if (deps.isClosing()) {
        refuseWith(socket, 'shutting_down', { status: 503, message: 'shutting down', retryAfter: limits.retryAfter }, at)
      } else if (!lot.hasRoom(step.id)) {
        refuseWith(socket, 'lot_full', { status: 503, message: 'too many parked connections', retryAfter: limits.retryAfter }, at)
      } else {
        socket.write(CONNECT_OK)
        metrics.connect('parked')
        // Debug, not info: every rendezvous parks a replacement, and its 'relay closed' line names this connId.
        deps.log.debug({ ...at, id: step.id }, 'parked')
        ;(socket as { [kConnId]?: string })[kConnId] = connId
        shedConnectState(socket)
        deps.onParked?.(socket)
        lot.park(step.id, socket)
      }
    }, err => {
      deps.log.error({ ...at, err }, 'CONNECT failed')
      refuseWith(socket, 'error', { status: 500, message: 'internal error' }, at)
    }).finally(() => {
      clearTimeout(timer)
      pending--
      untrack()
    })
  }
}
