import type { ReplayCache, ReplayVerdict } from './replay-cache'

export interface MemoryReplayCacheOptions {
  /** Live entries at most. Default 100000. */
  maxEntries?: number
  /** Clock in ms. Default Date.now, the clock the verifier's windows use. */
  now?: () => number
}

/**
 * A single node's replay cache. Keys carry different ttls, so insertion order
 * says nothing about expiry order: a min-heap on expiry finds what has expired
 * in O(log n), and a Map answers lookups. Expired entries are dropped at the
 * start of every call, never by a timer, so nothing holds the process open.
 */
export class MemoryReplayCache implements ReplayCache {
  readonly #maxEntries: number
  readonly #now: () => number
  readonly #expiries = new Map<string, number>()
  // Parallel arrays of one binary min-heap ordered by expiry.
  #heapAt: number[] = []
  #heapKey: string[] = []

  constructor (opts: MemoryReplayCacheOptions = {}) {
    const maxEntries = opts.maxEntries ?? 100_000
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new RangeError('maxEntries must be a positive integer')
    this.#maxEntries = maxEntries
    this.#now = opts.now ?? Date.now
  }

  /** Live entries, for metrics and tests. */
  get size (): number {
    return this.#expiries.size
  }

  async remember (key: string, ttlMs: number): Promise<ReplayVerdict> {
    if (typeof ttlMs !== 'number' || Number.isNaN(ttlMs) || ttlMs < 0) throw new RangeError('ttlMs must be a non-negative number')
    const now = this.#now()
    this.#expire(now)
    if (this.#expiries.has(key)) return 'replayed'
    // Nothing to protect: the token can no longer be accepted anyway.
    if (ttlMs === 0) return 'fresh'
    if (this.#expiries.size >= this.#maxEntries) return 'full'
    const at = now + ttlMs
    this.#expiries.set(key, at)
    this.#push(at, key)
    return 'fresh'
  }

  async close (): Promise<void> {
    this.#expiries.clear()
    this.#heapAt = []
    this.#heapKey = []
  }

  // An entry lives while now < its expiry: a ttl of t ms covers t whole ms.
  #expire (now: number): void {
    while (this.#heapAt.length > 0 && this.#heapAt[0]! <= now) {
      this.#expiries.delete(this.#heapKey[0]!)
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
