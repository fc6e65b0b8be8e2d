import { owned } from './owned-key'
import type { ThrottleStore } from './throttle-store'

export interface MemoryThrottleStoreOptions {
  /** Keys tracked at most, for counts and for cool-offs each. Default 100000. */
  maxKeys?: number
  /** Failure timestamps kept at most, over all keys. Default 1000000. */
  maxHits?: number
  /** Clock in ms. Default Date.now. */
  now?: () => number
}

interface HitLog {
  times: number[]
  // The window of the last hit: once it has passed, the key counts nothing and can go.
  windowMs: number
  // Index of the oldest live entry: dropping from the front of an array is
  // O(n), so the front is skipped and compacted from time to time.
  head: number
}

const SWEEP_PER_CALL = 4

/**
 * A single node's failure counters. Each key keeps the exact times of its
 * failures, so a window means exactly windowMs. Memory is bounded twice:
 * by the number of keys and by the number of timestamps overall. Past either
 * bound the least recently hit keys are forgotten first, which an attacker
 * can only force by spreading failures over very many addresses, each of
 * which then starts with a clean count. Keys whose window or cool-off has
 * passed are dropped as later calls go by, least recently hit first;
 * nothing runs on a timer.
 */
export class MemoryThrottleStore implements ThrottleStore {
  readonly #maxKeys: number
  readonly #maxHits: number
  readonly #now: () => number
  // Both maps keep least recently touched keys first.
  readonly #hits = new Map<string, HitLog>()
  readonly #blocks = new Map<string, number>()
  #totalHits = 0

  constructor (opts: MemoryThrottleStoreOptions = {}) {
    this.#maxKeys = positiveInteger('maxKeys', opts.maxKeys ?? 100_000)
    this.#maxHits = positiveInteger('maxHits', opts.maxHits ?? 1_000_000)
    this.#now = opts.now ?? Date.now
  }

  /** Keys with failure counts, for metrics and tests. */
  get size (): number {
    return this.#hits.size
  }

  /** Keys with a cool-off, ended or not, for tests. */
  get blocked (): number {
    return this.#blocks.size
  }

  async hit (key: string, windowMs: number): Promise<number> {
    if (!Number.isFinite(windowMs) || windowMs < 0) throw new RangeError('windowMs must be a non-negative number')
    const now = this.#now()
    this.#sweep(now)
    let log = this.#hits.get(key)
    if (log === undefined) {
      log = { times: [], head: 0, windowMs }
      // Built from slices of a request, a key would keep the whole request line alive.
      key = owned(key)
    } else {
      this.#hits.delete(key)
      log.windowMs = windowMs
    }
    this.#hits.set(key, log)
    log.times.push(now)
    this.#totalHits++
    // A failure counts while it is younger than windowMs.
    this.#drop(log, (t) => t <= now - windowMs)
    this.#evictOthers(key)
    // One key alone over the budget: its count saturates at maxHits.
    if (this.#totalHits > this.#maxHits) this.#drop(log, () => this.#totalHits > this.#maxHits)
    return log.times.length - log.head
  }

  async refund (key: string): Promise<void> {
    const log = this.#hits.get(key)
    if (log === undefined || log.times.length === log.head) return
    // An attempt is taken back moments after it was counted, so the latest hit is its own or one as recent;
    // the others keep their times, and leave the window when they would have.
    log.times.pop()
    this.#totalHits--
    if (log.times.length === log.head) this.#hits.delete(key)
  }

  async block (key: string, ms: number): Promise<void> {
    if (!Number.isFinite(ms) || ms <= 0) return
    const now = this.#now()
    const previous = this.#blocks.get(key)
    if (previous === undefined) key = owned(key)
    else this.#blocks.delete(key)
    // A shorter cool-off never cuts a longer one short.
    this.#blocks.set(key, Math.max(previous ?? 0, now + ms))
    for (const [oldKey, until] of this.#blocks) {
      if (until > now && this.#blocks.size <= this.#maxKeys) break
      this.#blocks.delete(oldKey)
    }
  }

  async blockedFor (key: string): Promise<number> {
    const until = this.#blocks.get(key)
    if (until === undefined) return 0
    const left = until - this.#now()
    if (left > 0) return left
    this.#blocks.delete(key)
    return 0
  }

  async close (): Promise<void> {
    this.#hits.clear()
    this.#blocks.clear()
    this.#totalHits = 0
  }

  // Drops entries from the front of the log while `stale` says so.
  // Times are appended in clock order, so the front holds the oldest.
  #drop (log: HitLog, stale: (t: number) => boolean): void {
    const times = log.times
    while (log.head < times.length && stale(times[log.head]!)) {
      log.head++
      this.#totalHits--
    }
    if (log.head === times.length) {
      times.length = 0
      log.head = 0
    } else if (log.head >= 64 && log.head * 2 >= times.length) {
      times.splice(0, log.head)
      log.head = 0
    }
  }

  // A few keys per call, from the least recently hit: amortised, and enough to keep up with any rate of new keys.
  #sweep (now: number): void {
    let budget = SWEEP_PER_CALL
    for (const [oldKey, log] of this.#hits) {
      const last = log.times[log.times.length - 1]
      if (budget-- === 0 || (last !== undefined && last > now - log.windowMs)) break
      this.#hits.delete(oldKey)
      this.#totalHits -= log.times.length - log.head
    }
    budget = SWEEP_PER_CALL
    for (const [oldKey, until] of this.#blocks) {
      if (budget-- === 0 || until > now) break
      this.#blocks.delete(oldKey)
    }
  }

  #evictOthers (keep: string): void {
    for (const [oldKey, log] of this.#hits) {
      if (this.#hits.size <= this.#maxKeys && this.#totalHits <= this.#maxHits) return
      if (oldKey === keep) return
      this.#hits.delete(oldKey)
      this.#totalHits -= log.times.length - log.head
    }
  }
}

function positiveInteger (name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer`)
  return value
}
