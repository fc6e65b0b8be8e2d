/**
 * Attempts waiting for room on throttle counters. One is woken when an
 * attempt on its counter ends on this node, or when its pause runs out:
 * room made on another node is seen only by looking again.
 */
export class RoomWaits {
  readonly #waiting = new Map<string, Set<() => void>>()

  /** Resolves once woken on one of `keys`, or after `ms`. */
  async wait (keys: readonly string[], ms: number): Promise<void> {
    await new Promise<void>(resolve => {
      const wake = (): void => {
        clearTimeout(timer)
        for (const key of keys) this.#forget(key, wake)
        resolve()
      }
      const timer = setTimeout(wake, ms)
      for (const key of keys) {
        let waiting = this.#waiting.get(key)
        if (waiting === undefined) this.#waiting.set(key, waiting = new Set())
        waiting.add(wake)
      }
    })
  }

  /** An attempt on `key` ended, leaving room for one more at most: the longest waiting looks again. */
  wakeOne (key: string): void {
    const first = this.#waiting.get(key)?.values().next()
    if (first !== undefined && first.done !== true) first.value()
  }

  /** A cool-off began on `key`: everyone waiting on it is to be told so now. */
  wakeAll (key: string): void {
    for (const wake of [...this.#waiting.get(key) ?? []]) wake()
  }

  #forget (key: string, wake: () => void): void {
    const waiting = this.#waiting.get(key)
    if (waiting === undefined) return
    waiting.delete(wake)
    if (waiting.size === 0) this.#waiting.delete(key)
  }
}
