import { Backoff } from './backoff'
import { probe } from './probe'

// A 200 only proves the path works once the connection has survived this long;
// a server that accepts and closes at once must still be backed off from.
const STABLE_MS = 5000

export interface RetryOptions {
  backoffBase: number
  backoffMax: number
  /** Mean ms between probes while the server is unreachable; 0 turns probing off. */
  probeInterval: number
  connectTimeout: number
  /** The node the next probe dials. */
  pick: () => URL
  /** Called when a wait ends, by its timer or by a probe that found the server back. */
  ready: () => void
  /** Called for every new wait. */
  waiting: (info: { delay: number, attempt: number, reason: string }) => void
  /** The backoff's jitter source; tests fix it. */
  random?: () => number
}

/**
 * When the agent may dial again after a failure: one backoff delay covers a
 * burst of failures, a server's Retry-After is honoured, and while nobody
 * answers at all, cheap probes end the wait the moment the server is back.
 * After parked connections were dropped, probes watch too, but end the wait
 * only on a restart they saw, down (refused) and then up again: a server that
 * stays up and keeps closing connections still gets the ordinary backoff.
 */
export class RetrySchedule {
  readonly #opts: RetryOptions
  readonly #backoff: Backoff
  #timer?: NodeJS.Timeout
  #until = 0
  #stableTimer?: NodeJS.Timeout
  #probing = false
  // While probes watch: whether one has seen the server down, so that the next one that finds it up saw it return.
  #watch?: { seenDown: boolean }
  #stopped = false
  /** Whether the last failure was that nobody answered: only then do probes watch for the return. */
  unreachable = false

  constructor (opts: RetryOptions) {
    this.#opts = opts
    this.#backoff = new Backoff({ base: opts.backoffBase, max: opts.backoffMax, random: opts.random })
  }

  /** Whether a wait is running: no new attempt may start until it ends. */
  get pending (): boolean {
    return this.#timer !== undefined
  }

  /** A connection parked: once it has lived long enough, the backoff starts over. */
  parked (): void {
    this.unreachable = false
    this.#watch = undefined
    this.#stableTimer ??= setTimeout(() => { this.#stableTimer = undefined; this.#backoff.reset() }, STABLE_MS).unref()
  }

  /** A client came through: the path works, whatever happened before. */
  succeeded (): void {
    this.#backoff.reset()
  }

  /** `dropped`: a parked connection closed, perhaps because the server is restarting. */
  failed (reason: string, retryAfter = 0, dropped = false): void {
    clearTimeout(this.#stableTimer)
    this.#stableTimer = undefined
    if (this.#timer === undefined || Date.now() + retryAfter > this.#until) {
      clearTimeout(this.#timer)
      const delay = Math.max(this.#backoff.next(), retryAfter)
      this.#until = Date.now() + delay
      this.#timer = setTimeout(() => this.#end(), delay)
      this.#opts.waiting({ delay, attempt: this.#backoff.attempts, reason })
    }
    // A server that asked for a wait gets it: no probe ends it.
    if (retryAfter > 0) this.#watch = undefined
    else if (this.unreachable || dropped) this.#watchForReturn(this.unreachable)
  }

  stop (): void {
    this.#stopped = true
    clearTimeout(this.#timer)
    this.#timer = undefined
    clearTimeout(this.#stableTimer)
  }

  #end (): void {
    this.#timer = undefined
    this.#opts.ready()
  }

  #watchForReturn (down: boolean): void {
    const every = this.#opts.probeInterval
    if (every === 0) return
    this.#watch ??= { seenDown: false }
    if (down) this.#watch.seenDown = true
    if (this.#probing) return
    this.#probing = true
    const next = (): void => {
      if (this.#timer === undefined || this.#stopped || this.#watch === undefined) {
        this.#probing = false
        this.#watch = undefined
        return
      }
      // Jittered, so agents that lost the same server do not probe it in step.
      setTimeout(() => {
        if (this.#timer === undefined || this.#watch === undefined) return next()
        probe(this.#opts.pick(), this.#opts.connectTimeout).then((up) => this.#probed(up) ? undefined : next(), next)
      }, Math.round(every * (0.5 + 0.5 * Math.random()))).unref()
    }
    next()
  }

  // Whether this probe ended the wait: it found the server up after one had found it down.
  #probed (up: boolean): boolean {
    if (this.#watch === undefined || this.#timer === undefined || this.#stopped) return false
    if (!up) {
      this.#watch.seenDown = true
      return false
    }
    if (!this.#watch.seenDown) return false
    clearTimeout(this.#timer)
    this.unreachable = false
    this.#probing = false
    this.#watch = undefined
    this.#end()
    return true
  }
}
