import { ExpiryHeap } from '../stores/expiry-heap'

/** A place taken for one token while the replay cache judges it: kept for the token's window, or let go. */
export interface Reservation {
  /** The cache took the token: it counts against its ID until `until` (ms on the verifier's clock). */
  keep: (until: number) => void
  /** The cache did not take it (a replay, full, failed): it never counted. */
  release: () => void
}

export interface ReplayShareOptions {
  /** Live tokens one ID may hold before the share can bind; 0: no share. */
  share: number
  /** The replay cache's room; without it there is no share (the cache knows its own capacity). */
  room: (() => number) | undefined
}

const NO_RESERVATION: Reservation = { keep: () => {}, release: () => {} }

/**
 * Each ID's fair share of the replay cache. A hidden server with a valid
 * secret could otherwise fill the cache by parking and closing at speed, and
 * every other ID's tokens would get 503 for a whole window. An ID that holds
 * its share gets one more token only while at least a share of room would
 * be left after it: alone on a relay it may use all but the last share, and
 * however fast it goes that last share stays for the others.
 *
 * Counts are live accepted tokens plus those the cache is judging now, so
 * CONNECTs sent at once cannot all pass the check before any is counted;
 * the cache's room() leaves out what it is taking for the same reason.
 * Tokens leave their ID's count when their windows end, dropped lazily at
 * the next check (no timer holds the process); an ID at 0 is forgotten, so
 * memory stays bounded by the cache's own entries.
 */
export class ReplayShare {
  readonly #share: number
  readonly #room: (() => number) | undefined
  readonly #counts = new Map<string, number>()
  readonly #expiries = new ExpiryHeap<string>()
  readonly #uncount = (id: string): void => this.#decrement(id)

  constructor (opts: ReplayShareOptions) {
    this.#share = opts.share
    this.#room = opts.share > 0 ? opts.room : undefined
  }

  /** Tokens `id` holds now, being judged included; for tests and logs. */
  held (id: string, now: number): number {
    this.#expiries.dropExpired(now, this.#uncount)
    return this.#counts.get(id) ?? 0
  }

  /**
   * A place for one more token of `id`, or why not: 'share' when the ID
   * holds its share and the cache is nearly full. A cache that is full
   * outright gets its own say, so that a replay is still told apart.
   */
  reserve (id: string, now: number): Reservation | 'share' {
    if (this.#room === undefined) return NO_RESERVATION
    if (this.held(id, now) >= this.#share) {
      const room = this.#room()
      if (room > 0 && room <= this.#share) return 'share'
    }
    this.#counts.set(id, (this.#counts.get(id) ?? 0) + 1)
    let settled = false
    return {
      keep: until => {
        if (!settled) this.#expiries.push(until, id)
        settled = true
      },
      release: () => {
        if (!settled) this.#decrement(id)
        settled = true
      }
    }
  }

  #decrement (id: string): void {
    const left = (this.#counts.get(id) ?? 0) - 1
    if (left > 0) this.#counts.set(id, left)
    else this.#counts.delete(id)
  }
}
