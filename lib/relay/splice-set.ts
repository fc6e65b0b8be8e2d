import type { Splice } from './splice'

/** A spliced pair and the ID it serves, so that one ID's pairs can be counted and cut. */
export type SplicedPair = Splice & { id: string }

/**
 * The open spliced pairs, each ID's counted as they come and go. The count
 * lives in add and delete, which every path that opens or closes a pair goes
 * through (this node's relays, other nodes' forwarded ones, a lingering
 * close, a shutdown), so none can leave a count behind; an ID at 0 is
 * forgotten. Always built empty: Set's constructor would add an iterable
 * before #perId exists.
 */
export class SpliceSet extends Set<SplicedPair> {
  readonly #perId = new Map<string, number>()

  /** Open pairs of `id`. */
  of (id: string): number {
    return this.#perId.get(id) ?? 0
  }

  override add (pair: SplicedPair): this {
    if (!this.has(pair)) this.#perId.set(pair.id, this.of(pair.id) + 1)
    return super.add(pair)
  }

  override delete (pair: SplicedPair): boolean {
    if (!super.delete(pair)) return false
    const left = this.of(pair.id) - 1
    if (left > 0) this.#perId.set(pair.id, left)
    else this.#perId.delete(pair.id)
    return true
  }

  override clear (): void {
    super.clear()
    this.#perId.clear()
  }
}
