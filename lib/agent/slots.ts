import type * as net from 'node:net'
import { untilOrAfter } from './grace'

// CONNECTs in flight at once while the pool fills: a large pool ramps up instead of dialling all at once.
export const MAX_CONNECTING = 8

/** One connection of the pool: its CONNECT in flight, then parked. */
export interface Slot {
  abort: AbortController
  /** The node this connection went to. */
  url: URL
  socket?: net.Socket
  parkedAt?: number
  retiring: boolean
  ageTimer?: NodeJS.Timeout
  unwatch?: () => void
}

/** The pool's connections, connecting or parked, and how a closing agent waits for those in flight. */
export class Slots extends Set<Slot> {
  #emptied?: () => void

  /** Out of the pool, its socket kept: taken, or let go. */
  release (slot: Slot): void {
    this.delete(slot)
    clearTimeout(slot.ageTimer)
    slot.unwatch?.()
    if (this.size === 0) this.#emptied?.()
  }

  /** Aborts every one, and closes what is parked. */
  discardAll (): void {
    for (const slot of this) {
      clearTimeout(slot.ageTimer)
      slot.unwatch?.()
      slot.abort.abort()
      slot.socket?.destroy()
    }
    this.clear()
    this.#emptied?.()
  }

  /** Waits until the pool is empty (each CONNECT in flight answered), at most `graceMs` (undefined: their own timeout), then discards the rest. */
  async emptied (graceMs: number | undefined): Promise<void> {
    if (this.size > 0) {
      await untilOrAfter(done => { this.#emptied = done }, graceMs)
      this.#emptied = undefined
    }
    this.discardAll()
  }

  /** The longest-parked one marked for retirement, if any. */
  oldestRetiring (): Slot | undefined {
    let oldest: Slot | undefined
    for (const slot of this) {
      if (slot.retiring && slot.socket !== undefined && (oldest === undefined || slot.parkedAt! < oldest.parkedAt!)) oldest = slot
    }
    return oldest
  }
}
