/**
 * The replay keys a node accepted, each until its window ends, in the order
 * accepted, which is about the order they expire in. Bounded: when it holds
 * `max` live keys it is full, and the caller refuses new tokens rather than
 * forget one. Expired keys go from the front, a bounded number at a time, so
 * that no sweep stalls the event loop.
 */
export class AcceptedTokens {
  readonly #until = new Map<string, number>()
  readonly #max: number

  constructor (max: number) {
    this.#max = max
  }

  get size (): number {
    return this.#until.size
  }

  has (key: string, now: number): boolean {
    const until = this.#until.get(key)
    return until !== undefined && until > now
  }

  /** Whether it holds `max` keys that are still live, once expired ones at the front are gone. */
  full (now: number): boolean {
    if (this.#until.size < this.#max) return false
    this.sweep(now, 1000)
    return this.#until.size >= this.#max
  }

  /** Live keys it can still take before it is full, once expired ones at the front are gone. */
  room (now: number): number {
    this.sweep(now, 1000)
    return Math.max(0, this.#max - this.#until.size)
  }

  add (key: string, until: number, now: number): void {
    this.#until.delete(key)
    this.#until.set(key, until)
    this.sweep(now, 8)
  }

  /** Drops expired keys from the front, up to `budget` of them; the first live one ends it. */
  sweep (now: number, budget: number): void {
    let looked = 0
    for (const [key, end] of this.#until) {
      if (looked++ === budget || end > now) break
      this.#until.delete(key)
    }
  }

  /** The live keys with their milliseconds left, `size` at a time. */
  * batches (now: number, size: number): Generator<Array<[string, number]>> {
    let batch: Array<[string, number]> = []
    for (const [key, until] of this.#until) {
      if (until <= now) continue
      batch.push([key, Math.ceil(until - now)])
      if (batch.length === size) {
        yield batch
        batch = []
      }
    }
    if (batch.length > 0) yield batch
  }
}
