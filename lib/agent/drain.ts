import type * as net from 'node:net'
import { cutRelay } from './forward'
import { untilOrAfter } from './grace'

/** Waits for `sockets` to close, at most `graceMs` (undefined: as long as they last), then cuts what is left. */
export async function drainSockets (sockets: ReadonlySet<net.Socket>, graceMs: number | undefined, cut: (socket: net.Socket) => void = s => s.destroy()): Promise<void> {
  if (sockets.size === 0) return
  const all = [...sockets].map((s) => new Promise<void>((resolve) => {
    if (s.destroyed) resolve()
    else s.once('close', () => resolve())
  }))
  await untilOrAfter(done => { Promise.all(all).then(done, done) }, graceMs)
  for (const s of sockets) cut(s)
  await Promise.all(all)
}

/**
 * The connections an agent relays: each taken connection to the rendezvous,
 * and its connection to the local service, which may linger (half-closed)
 * after its relay ended and would hold a closed agent's process.
 */
export class Relays {
  readonly #remotes = new Set<net.Socket>()
  readonly #locals = new Set<net.Socket>()

  add (remote: net.Socket, local: net.Socket): void {
    this.#remotes.add(remote)
    this.#locals.add(local)
    remote.once('close', () => this.#remotes.delete(remote))
    local.once('close', () => this.#locals.delete(local))
  }

  cut (): void {
    for (const socket of this.#remotes) cutRelay(socket)
  }

  /** Gives relays `graceMs` (undefined: as long as they last) to finish, then cuts them and every local connection. */
  async drain (graceMs: number | undefined): Promise<void> {
    await drainSockets(this.#remotes, graceMs, cutRelay)
    for (const local of this.#locals) local.destroy()
  }
}
