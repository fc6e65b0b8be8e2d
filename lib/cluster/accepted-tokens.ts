/**
 * The replay keys a node accepted, each until its window ends, in the order
 * accepted: bounded, the oldest dropped first. Expired ones are dropped as
 * new ones come in, a few at a time, so no sweep ever stalls the loop.
 */
export class AcceptedTokens {
  readonly #until = new Map<string, number>()
  readonly #max: number

  constructor (max: number) {
    this.#max = max
  }

  has (key: string, now: number): boolean {
    const until = this.#until.get(key)
    return until !== undefined && until > now
  }

  add (key: string, until: number, now = Date.now()): void {
    this.#until.delete(key)
    this.#until.set(key, until)
    // From the oldest: the expired, and any past the bound; a live one within it ends the look.
    let looked = 0
    for (const [oldest, end] of this.#until) {
      if (looked++ === 8 || (end > now && this.#until.size <= this.#max)) break
      this.#until.delete(oldest)
    }
  }

  get size (): number {
    return this.#until.size
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
