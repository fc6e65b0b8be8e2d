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
 * A single node's replay cache. Keys carry different ttls, so insertion order
 * says nothing about expiry order: a min-heap on expiry finds what has expired
 * in O(log n), and a Set answers lookups (the heap holds the expiries).
 * Expired entries are dropped at the start of every call, never by a timer,
 * so nothing holds the process open. An entry costs about 100 B: the key,
 * a Set slot and two heap slots.
 */
export class MemoryReplayCache implements ReplayCache {
  readonly #maxEntries: number
  readonly #now: () => number
  readonly #keys = new Set<string>()
  // Parallel arrays of one binary min-heap ordered by expiry.
  #heapAt: number[] = []
  #heapKey: string[] = []

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

  /**
   * A copy of the entries and their expiries (ms on the clock `now`), in no
   * order, some perhaps expired: what a journal must keep. A copy, so that it
   * can be written out piecemeal while the cache goes on changing.
   */
  snapshot (): { keys: string[], ats: number[] } {
    return { keys: this.#heapKey.slice(), ats: this.#heapAt.slice() }
  }

  async remember (key: string, ttlMs: number): Promise<ReplayVerdict> {
    if (typeof ttlMs !== 'number' || Number.isNaN(ttlMs) || ttlMs < 0) throw new RangeError('ttlMs must be a non-negative number')
    const now = this.#now()
    this.#expire(now)
    if (this.#keys.has(key)) return 'replayed'
    // Nothing to protect: the token can no longer be accepted anyway.
    if (ttlMs === 0) return 'fresh'
    if (this.#keys.size >= this.#maxEntries) return 'full'
    const kept = owned(key)
    this.#keys.add(kept)
    this.#push(now + ttlMs, kept)
    return 'fresh'
  }

  async close (): Promise<void> {
    this.#keys.clear()
    this.#heapAt = []
    this.#heapKey = []
  }

  // An entry lives while now < its expiry: a ttl of t ms covers t whole ms.
  #expire (now: number): void {
    while (this.#heapAt.length > 0 && this.#heapAt[0]! <= now) {
      this.#keys.delete(this.#heapKey[0]!)
      this.#pop()
    }
  }

  #push (at: number, key: string): void {
    const ats = this.#heapAt
    const keys = this.#heapKey
    let i = ats.length
    ats.push(at)
    keys.push(key)
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (ats[parent]! <= at) break
      ats[i] = ats[parent]!
      keys[i] = keys[parent]!
      i = parent
    }
    ats[i] = at
    keys[i] = key
  }

  #pop (): void {
    const ats = this.#heapAt
    const keys = this.#heapKey
    const lastAt = ats.pop()!
    const lastKey = keys.pop()!
    const n = ats.length
    if (n === 0) return
    let i = 0
    for (;;) {
      const left = 2 * i + 1
      if (left >= n) break
      const right = left + 1
      const child = right < n && ats[right]! < ats[left]! ? right : left
      if (ats[child]! >= lastAt) break
      ats[i] = ats[child]!
      keys[i] = keys[child]!
      i = child
    }
    ats[i] = lastAt
    keys[i] = lastKey
  }
}
