/**
 * The clients waiting for one ID's hidden server, served in turn by source
 * (a client address, or its IPv6 subnet), first in, first out within each.
 * Plain first in, first out would let one source that keeps many clients
 * waiting take nearly every connection its hidden server parks, while
 * everyone else waits behind them.
 */
export class WaitingLine<W> {
  // A Map keeps insertion order: the source first in it is next in turn.
  readonly #bySource = new Map<string, Set<W>>()
  #size = 0

  get size (): number {
    return this.#size
  }

  /** How many of this source's clients wait. */
  countOf (source: string): number {
    return this.#bySource.get(source)?.size ?? 0
  }

  add (source: string, waiter: W): void {
    let set = this.#bySource.get(source)
    if (set === undefined) this.#bySource.set(source, set = new Set())
    set.add(waiter)
    this.#size++
  }

  /** False when it was not waiting (served or gone already). */
  delete (source: string, waiter: W): boolean {
    const set = this.#bySource.get(source)
    if (set === undefined || !set.delete(waiter)) return false
    if (set.size === 0) this.#bySource.delete(source)
    this.#size--
    return true
  }

  /** The client to serve next: the longest waiting of the source whose turn it is; that source goes to the back. */
  next (): W | undefined {
    const first = this.#bySource.entries().next()
    if (first.done === true) return undefined
    const [source, set] = first.value
    this.#bySource.delete(source)
    this.#bySource.set(source, set)
    return set.values().next().value
  }

  /** Every waiting client, for an eviction. */
  all (): W[] {
    return [...this.#bySource.values()].flatMap(set => [...set])
  }
}
