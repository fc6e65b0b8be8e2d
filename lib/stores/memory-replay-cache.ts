import { ExpiryHeap } from './expiry-heap'
import { owned } from './owned-key'
import type { ReplayCache, ReplayVerdict } from './replay-cache'

/**
 * Every accepted token stays for its whole window (the skew plus 6 s, 126 s
 * by default), so the cache holds rate x window entries: 500,000 carries
 * about 4,000 new parked connections a second, more than one relay process
 * accepts, in about 50 MB (105 B an entry). At the earlier 100,000 the cache,
 * not the relay, capped a busy relay at about 790 a second.
 */
export const DEFAULT_MAX_ENTRIES = 500_000

export interface MemoryReplayCacheOptions {
  /** Live entries at most. Default DEFAULT_MAX_ENTRIES. */
  maxEntries?: number
  /** Clock in ms. Default Date.now, the clock the verifier's windows use. */
  now?: () => number
}

/**
 * A single node's replay cache: a Set answers lookups, an ExpiryHeap says
 * what has expired. Expired entries are dropped at the start of every call,
 * never by a timer, so nothing holds the process open. An entry costs about
 * 100 B: the key, a Set slot and two heap slots.
 */
export class MemoryReplayCache implements ReplayCache {
  readonly #maxEntries: number
  readonly #now: () => number
  readonly #keys = new Set<string>()
  readonly #heap = new ExpiryHeap<string>()
  readonly #forget = (key: string): void => { this.#keys.delete(key) }

  constructor (opts: MemoryReplayCacheOptions = {}) {
    const maxEntries = opts.maxEntries ?? DEFAULT_MAX_ENTRIES
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new RangeError('maxEntries must be a positive integer')
    this.#maxEntries = maxEntries
    this.#now = opts.now ?? Date.now
  }

  /** Live entries, for metrics and tests. */
  get size (): number {
    return this.#keys.size
  }

  /** Entries it can still take before it answers 'full'. */
  room (): number {
    this.#heap.dropExpired(this.#now(), this.#forget)
    return this.#maxEntries - this.#keys.size
  }

  /**
   * A copy of the entries and their expiries (ms on the clock `now`), in no
   * order, some perhaps expired: what a journal must keep. A copy, so that it
   * can be written out piecemeal while the cache goes on changing.
   */
  snapshot (): { keys: string[], ats: number[] } {
    const { values, ats } = this.#heap.snapshot()
    return { keys: values, ats }
  }

  async remember (key: string, ttlMs: number): Promise<ReplayVerdict> {
    if (typeof ttlMs !== 'number' || Number.isNaN(ttlMs) || ttlMs < 0) throw new RangeError('ttlMs must be a non-negative number')
    const now = this.#now()
    this.#heap.dropExpired(now, this.#forget)
    if (this.#keys.has(key)) return 'replayed'
    // Nothing to protect: the token can no longer be accepted anyway.
    if (ttlMs === 0) return 'fresh'
    if (this.#keys.size >= this.#maxEntries) return 'full'
    const kept = owned(key)
    this.#keys.add(kept)
    this.#heap.push(now + ttlMs, kept)
    return 'fresh'
  }

  async close (): Promise<void> {
    this.#keys.clear()
    this.#heap.clear()
  }
}
