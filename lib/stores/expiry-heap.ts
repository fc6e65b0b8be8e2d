/**
 * A binary min-heap of values ordered by expiry (ms). Entries carry
 * different ttls, so insertion order says nothing about expiry order: the
 * heap finds what has expired in O(log n) an entry. Parallel arrays, not
 * objects: at 500,000 entries an object each would cost more than the keys.
 */
export class ExpiryHeap<T> {
  #ats: number[] = []
  #values: T[] = []

  get size (): number {
    return this.#ats.length
  }

  /** A copy of the entries and their expiries, in no order: what a journal must keep. */
  snapshot (): { values: T[], ats: number[] } {
    return { values: this.#values.slice(), ats: this.#ats.slice() }
  }

  /** Takes out every entry whose expiry is at or before `now` (an entry lives while now < its expiry), each passed to `gone`. */
  dropExpired (now: number, gone: (value: T) => void): void {
    while (this.#ats.length > 0 && this.#ats[0]! <= now) {
      const value = this.#values[0]!
      this.#pop()
      gone(value)
    }
  }

  clear (): void {
    this.#ats = []
    this.#values = []
  }

  push (at: number, value: T): void {
    const ats = this.#ats
    const values = this.#values
    let i = ats.length
    ats.push(at)
    values.push(value)
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (ats[parent]! <= at) break
      ats[i] = ats[parent]!
      values[i] = values[parent]!
      i = parent
    }
    ats[i] = at
    values[i] = value
  }

  #pop (): void {
    const ats = this.#ats
    const values = this.#values
    const lastAt = ats.pop()!
    const lastValue = values.pop()!
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
      values[i] = values[child]!
      i = child
    }
    ats[i] = lastAt
    values[i] = lastValue
  }
}
