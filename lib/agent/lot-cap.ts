import { Backoff } from './backoff'

export interface LotCapOptions {
  backoffBase: number
  backoffMax: number
  /** Called when a wait ends and one more connection may be tried. */
  grow: () => void
}

/**
 * How many connections the pool may hold while the rendezvous says its lot is
 * full (503, docs/agent.md). A full lot is transient: the agent keeps what it
 * has until the server's Retry-After (or, without one, a backoff delay) has
 * passed, then tries one more, and one more after each that parks, until the
 * pool is full again. An episode is from the first refusal to that point.
 */
export class LotCap {
  readonly #opts: LotCapOptions
  readonly #backoff: Backoff
  #cap = Infinity
  #timer?: NodeJS.Timeout

  constructor (opts: LotCapOptions) {
    this.#opts = opts
    this.#backoff = new Backoff({ base: opts.backoffBase, max: opts.backoffMax })
  }

  /** The most connections the pool may hold now. */
  get value (): number {
    return this.#cap
  }

  /**
   * The lot refused one more while `parked` are parked. Returns the wait when
   * this begins an episode (for the one log line), undefined for the refusals
   * that follow within it.
   */
  full (parked: number, retryAfter = 0): number | undefined {
    const first = this.#cap === Infinity
    this.#cap = parked
    // Several CONNECTs may be in flight when the lot fills: one wait covers them all.
    if (this.#timer !== undefined) return undefined
    const delay = Math.max(retryAfter, this.#backoff.next())
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.#cap++
      this.#opts.grow()
    }, delay).unref()
    return first ? delay : undefined
  }

  /** A connection parked: the lot had room for it; outside a wait, that was the one try, so one more may follow. */
  parked (parked: number, pool: number): void {
    if (this.#cap === Infinity) return
    if (parked >= pool) return this.reset()
    // One that was in flight when the lot filled may still have found room: the pool never drops below it.
    this.#cap = Math.max(this.#cap, parked)
    if (this.#timer === undefined && parked >= this.#cap) this.#cap = parked + 1
  }

  /** The episode is over (the pool is full, or a parked connection was dropped and the lot may have changed). */
  reset (): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#cap = Infinity
    this.#backoff.reset()
  }
}
