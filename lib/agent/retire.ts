import type * as net from 'node:net'
import { RETIREMENT } from '../http/retirement'
import { untilOrAfter } from './grace'
import { watchParked } from './parked-watch'

/** How long a retired connection waits for the rendezvous to close it, before it is cut. */
export const RETIRE_GRACE_MS = 10_000

/**
 * Lets a parked connection go (its --max-age is up, or the agent is closing)
 * without losing a request: closing it could drop one the rendezvous is
 * writing into it right now. It sends the retirement answer instead
 * (http/retirement.ts) and keeps reading: the rendezvous closes it, or a
 * request already on its way arrives and goes to `onTaken`, to be served as
 * usual. A rendezvous that ignores the answer has it cut after
 * RETIRE_GRACE_MS. The function returned cuts it at once.
 */
export function retireParked (socket: net.Socket, onTaken: (head: Buffer) => void, onGone: () => void): () => void {
  const timer = setTimeout(() => socket.destroy(), RETIRE_GRACE_MS)
  timer.unref()
  const settle = (): void => { clearTimeout(timer); unwatch() }
  const unwatch = watchParked(socket, head => { settle(); onTaken(head) }, () => { settle(); onGone() })
  socket.write(RETIREMENT)
  return () => { settle(); socket.destroy() }
}

/** The connections an agent has let go and not yet seen closed or taken. */
export class Retirements {
  readonly #cuts = new Map<net.Socket, () => void>()
  #allSettled?: () => void

  letGo (socket: net.Socket, onTaken: (head: Buffer) => void): void {
    const settled = (): void => {
      this.#cuts.delete(socket)
      if (this.#cuts.size === 0) this.#allSettled?.()
    }
    const cut = retireParked(socket, (head) => { settled(); onTaken(head) }, settled)
    this.#cuts.set(socket, () => { settled(); cut() })
  }

  /** Waits until each one is closed or taken, at most `graceMs` (undefined: RETIRE_GRACE_MS each), then cuts the rest. */
  async settle (graceMs: number | undefined): Promise<void> {
    if (this.#cuts.size > 0) {
      await untilOrAfter(done => { this.#allSettled = done }, graceMs)
      this.#allSettled = undefined
    }
    this.cutAll()
  }

  cutAll (): void {
    for (const cut of [...this.#cuts.values()]) cut()
  }
}
