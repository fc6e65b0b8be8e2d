import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyBaseLogger } from 'fastify'
import { CONNECT_OK, refuse, type Refusal } from '../http/refusals'
import { normaliseAddress, type Admission, type AuthThrottle } from './auth-throttle'
import type { ConnectOutcome, RendezvousMetrics } from './metrics'
import type { TokenVerdict } from '../tokens/verdict'
import type { Recheck, Verifier } from '../tokens/verifier'
import { isTotpCode } from '../tokens/totp'
import type { ParkingLot } from './parking-lot'
import { parseConnectTarget } from '../http/connect-target'
import { shedConnectState } from './handoff'
import { kConnId } from './symbols'
import { logId } from './log-ids'
import { refusalLevel } from './log-limit'
import { stopWatching, watchWhileChecked } from './connect-watch'
import { isThrottleStoreFailure } from './throttle-store-watch'

export interface HiddenSideDeps {
  /** Asks its context's hasRoom before it spends a one-time token; a custom verifier is not asked. */
  verify: Verifier
  /** Whether the registry is cut off from its source (a cluster node without Redis), so that its copy may lack an ID or secret added meanwhile. */
  registryStale?: () => boolean
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

/** `reason` is the verifier's, for a verifier that could not decide now, and `id` the ID its token was good for. */
interface Refused { refusal: Refusal, outcome: ConnectOutcome, reason?: string, id?: string }

/** Who failed an authentication, for the failure counters and the line about it. */
interface Attempt { address: string, id: string, guessable: boolean }

/**
 * A CONNECT whose token was accepted: `recheck` says, as it is parked, whether
 * that still holds; `admission` is let go once that is known.
 */
interface Accepted { id: string, recheck: Recheck | undefined, attempt: Attempt, admission: Admission }

/** Refused; accepted for an ID; or nothing left to answer (answered meanwhile, or the peer left). */
type Step = Refused | Accepted | { gone: true }

// The reasons of the default verifier's 503s; any other is a custom verifier's (or its service's) own.
const TRY_LATER = new Map<string, ConnectOutcome>([
  // A replay cache that cannot answer (Redis down or hung) is not one that is full: another cause, another fix.
  ['replay_cache_error', 'store_unavailable'],
  ['replay_cache_full', 'replay_cache_full'],
  ['replay_share_full', 'replay_share_full']
])

/** What every line about one CONNECT carries. */
interface LineFields { side: 'hidden', connId: string, address: string | undefined }

const EARLY_DATA: Refused = { outcome: 'early_data', refusal: { status: 409, message: 'no bytes may follow the CONNECT head' } }

/** Answers hidden servers' `CONNECT uuid:ID?response=TKN`: parse, authenticate, park. */
export function createHiddenSide (deps: HiddenSideDeps): (req: IncomingMessage, socket: Socket, rest: Buffer) => void {
  const { lot, metrics, limits } = deps
  let pending = 0

  const shuttingDown: Refused = { outcome: 'shutting_down', refusal: { status: 503, message: 'shutting down', retryAfter: limits.retryAfter } }
  const lotFull: Refused = { outcome: 'lot_full', refusal: { status: 503, message: 'too many parked connections', retryAfter: limits.retryAfter } }
  // Fails closed: a token judged where failures cannot be counted is a guess without a limit (docs/security.md).
  const throttleDown: Refused = { outcome: 'throttle_unavailable', refusal: { status: 503, message: 'try again later', retryAfter: limits.retryAfter } }

  const level = refusalLevel(address => deps.throttle.sourceOf(address), { log: deps.log, side: 'hidden' })
  const refuseWith = (socket: Socket, { outcome, refusal, reason, id }: Refused, at: LineFields): void => {
    metrics.connect(outcome)
    deps.log[level(outcome, at.address)]({ ...at, outcome, status: refusal.status, ...(reason === undefined ? {} : { reason }), ...(id === undefined ? {} : { id }) }, 'CONNECT refused')
    // Date lets a refused agent tell a wrong secret from a clock that is off (docs/agent.md).
    refuse(socket, { ...refusal, headers: { ...refusal.headers, Date: new Date().toUTCString() } }, limits.lingerTimeout)
  }

  /** Why a CONNECT for `id` cannot be parked now, if it cannot. */
  const parkRefusal = (id: string): Refused | undefined => {
    if (deps.isClosing()) return shuttingDown
    if (!lot.hasRoom(id)) return lotFull
    return undefined
  }

  /**
   * `unparkable` is asked by the verifier once the token is proved good and
   * before it is spent: a CONNECT that would not be parked leaves its token
   * good for the retry its 503 asks for. `gone`: answered meanwhile, or the
   * peer left.
   */
  async function authenticate (req: IncomingMessage, socket: Socket, rest: Buffer, at: LineFields, unparkable: (id: string) => Step | undefined, gone: () => boolean): Promise<Step> {
    if (req.httpVersionMajor !== 1) return { outcome: 'malformed_target', refusal: { status: 400, message: 'malformed request' } }
    const target = parseConnectTarget(req.url ?? '')
    if (target.kind === 'malformed') return { outcome: 'malformed_target', refusal: { status: 400, message: target.reason } }
    if (target.kind === 'not_uuid') return { outcome: 'not_uuid', refusal: { status: 400, message: target.reason } }
    if (target.kind === 'missing_token') {
      return { outcome: 'missing_token', refusal: { status: 407, message: 'missing response token', headers: { 'Proxy-Authenticate': 'rendezvous' } } }
    }
    const attempt: Attempt = { address: socket.remoteAddress ?? 'unknown', id: target.id, guessable: isTotpCode(target.token) }
    // Counted before the token is judged, so that CONNECTs sent at once cannot all be judged before any failure is counted.
    const entry = await deps.throttle.admit(attempt.address, attempt.id, attempt.guessable, gone)
    if ('gone' in entry) return entry
    if ('coolOff' in entry) return { outcome: 'throttled', refusal: { status: 429, message: 'too many failed attempts', retryAfter: entry.coolOff } }
    let step: Step | undefined
    try {
      step = await judge(target.token, attempt, rest, entry.admission, at, unparkable)
      return step
    } finally {
      // A token not judged after all, or one that failed (then this does nothing); an accepted one is let go as it is parked.
      if (step === undefined || !('admission' in step)) letGo(entry.admission)
    }
  }

  async function judge (token: string, attempt: Attempt, rest: Buffer, admission: Admission, at: LineFields, unparkable: (id: string) => Step | undefined): Promise<Step> {
    const { address, id, guessable } = attempt
    // The relay must not guess whose bytes these were meant to be once a client is spliced in.
    if (rest.length > 0) return EARLY_DATA
    let held: Step | undefined
    const verdict = await deps.verify(id, token, { hasRoom: () => (held = unparkable(id)) === undefined })
    if (held !== undefined) return held
    if (!verdict.ok) return await refusalFor(verdict, attempt, admission, at)
    // Best effort: a store that fails here costs only the exemption, not the CONNECT it accepted.
    if (guessable) await deps.throttle.accepted(address, id).catch((err: unknown) => { deps.log.debug({ err }, 'could not record an accepted TOTP code') })
    return { id, recheck: verdict.recheck, attempt, admission }
  }

  /** The attempt no longer counts: its token was good, or not judged. Not awaited: waiting CONNECTs are woken once it is done. */
  function letGo (admission: Admission): void {
    admission.release().catch((err: unknown) => { deps.log.debug({ err }, 'could not take back a counted CONNECT') })
  }

  async function refusalFor (verdict: TokenVerdict & { ok: false }, { id }: Attempt, admission: Admission, at: LineFields): Promise<Refused> {
    if (verdict.status === 503) {
      const outcome = TRY_LATER.get(verdict.reason) ?? 'verifier_unavailable'
      // Which ID's share is full, or whose verifier is away, is what the operator looks for next.
      return { outcome, reason: verdict.reason, id, refusal: { status: 503, message: 'try again later', retryAfter: limits.retryAfter } }
    }
    const { coolOff, tripped } = await admission.failed()
    // Counted all the same: a copy on its way back may still accept an old secret, and guesses must not go free meanwhile.
    if (deps.registryStale?.() === true) return staleRefusal(id)
    deps.log.info({ ...at, id, reason: verdict.reason }, 'CONNECT authentication failed')
    // The failure that reaches the limit is still answered as a failure: the cool-off is for the attempts after it.
    const fromHere = tripped.filter(counter => counter !== 'id_totp')
    if (fromHere.length > 0) deps.log.warn({ ...at, id, coolOff, limits: fromHere }, 'too many failed CONNECTs; cooling off')
    // Not the address's doing alone: every address's TOTP codes for this ID are held back, v1 tokens are not.
    if (tripped.includes('id_totp')) deps.log.warn({ ...at, id, coolOff }, 'too many wrong TOTP codes for this ID from all addresses; its TOTP codes are cooled off')
    // Unknown IDs and bad tokens get the same answer, so IDs cannot be probed.
    return { outcome: 'unauthorized', refusal: { status: 401, message: 'authentication failed' } }
  }

  // A copy cut off from its source cannot tell a wrong secret from one added or rotated meanwhile, and a 401 stops an agent for good.
  function staleRefusal (id: string): Refused {
    return { outcome: 'store_unavailable', reason: 'registry_stale', id, refusal: { status: 503, message: 'try again later', retryAfter: limits.retryAfter } }
  }

  // One function for every socket: a closure per socket would keep this CONNECT's logger and timer alive for as long as it stays parked.
  function onSocketError (this: Socket, err: Error): void {
    deps.log.debug({ err, side: 'hidden', address: this.remoteAddress }, 'hidden-side socket error')
  }

  function park (socket: Socket, id: string, connId: string, at: LineFields): void {
    socket.write(CONNECT_OK)
    metrics.connect('parked')
    // Debug, not info: every rendezvous parks a replacement, and its 'relay closed' line names this connId.
    deps.log.debug({ ...at, id }, 'parked')
    ;(socket as { [kConnId]?: string })[kConnId] = connId
    shedConnectState(socket)
    deps.onParked?.(socket)
    lot.park(id, socket)
  }

  return function onConnect (req, socket, rest) {
    const connId = logId()
    // Fields rather than a child logger: most CONNECTs log one line, and a child per CONNECT cost more than that line.
    const at: LineFields = { side: 'hidden', connId, address: normaliseAddress(socket.remoteAddress) }
    socket.on('error', onSocketError)
    watchWhileChecked(socket)
    if (deps.isClosing()) {
      refuseWith(socket, shuttingDown, at)
      return
    }
    if (pending >= limits.maxPendingConnects) {
      refuseWith(socket, { outcome: 'busy', refusal: { status: 503, message: 'too many pending connections', retryAfter: limits.retryAfter } }, at)
      return
    }
    pending++
    // Answered before its check ended: timed out, or cut by a shutdown, which answers it as it answers any CONNECT then.
    let answered = false
    const untrack = deps.track(socket, () => {
      answered = true
      refuseWith(socket, shuttingDown, at)
    })
    const timer = setTimeout(() => {
      answered = true
      refuseWith(socket, { outcome: 'timeout', refusal: { status: 408, message: 'authentication took too long' } }, at)
    }, limits.connectTimeout)
    const stillOpen = (): boolean => !answered && !socket.destroyed
    const unparkable = (id: string): Step | undefined => stillOpen() ? parkRefusal(id) : { gone: true }
    const failed = (err: unknown): void => {
      if (isThrottleStoreFailure(err)) {
        // Its cause is warned about once a minute (throttle-store-watch.ts); a timeout may have answered meanwhile.
        if (stillOpen()) refuseWith(socket, throttleDown, at)
        else leftUnanswered()
        return
      }
      deps.log.error({ ...at, err }, 'CONNECT failed')
      refuseWith(socket, { outcome: 'error', refusal: { status: 500, message: 'internal error' } }, at)
    }
    // Every CONNECT is counted once: one that left during its check (not answered by a timeout or a shutdown) too.
    const leftUnanswered = (): void => { if (!answered) metrics.connect('peer_left') }
    const settle = (step: Accepted): Promise<void> | undefined => {
      if (!stillOpen()) {
        letGo(step.admission)
        leftUnanswered()
        return
      }
      // Synchronously with the park, or an eviction could fall between: the
      // ID removed or the secret revoked while the token was being spent
      // gets the answer a CONNECT sent after that change gets.
      let revoked
      try {
        revoked = step.recheck?.()
      } catch (err) {
        letGo(step.admission)
        // A registry whose get() throws: left to reject, it would be an unhandled rejection.
        failed(err)
        return
      }
      if (revoked !== undefined) {
        return refusalFor({ ok: false, reason: revoked }, step.attempt, step.admission, at).then(refused => {
          if (stillOpen()) refuseWith(socket, refused, at)
        }, failed)
      }
      const seen = stopWatching(socket)
      if (seen.ended) {
        // It left while its token was checked (a crashing agent): handed to a waiting client, it would answer nothing.
        leftUnanswered()
        deps.log.debug({ ...at, id: step.id }, 'CONNECT ended before its answer')
        socket.destroy()
      } else {
        // The lot is asked again too: it may have filled while the token was
        // being spent. Such a token is spent and refused with 503, but the
        // lot never holds more than its limits.
        const refused = seen.sentMore ? EARLY_DATA : parkRefusal(step.id)
        if (refused !== undefined) refuseWith(socket, refused, at)
        else park(socket, step.id, connId, at)
      }
      letGo(step.admission)
    }
    authenticate(req, socket, rest, at, unparkable, () => !stillOpen()).then(step => {
      if ('admission' in step) return settle(step)
      if ('gone' in step || !stillOpen()) return leftUnanswered()
      refuseWith(socket, step, at)
    }, failed).finally(() => {
      clearTimeout(timer)
      pending--
      untrack()
    })
  }
}
