import * as tls from 'node:tls'
import { trustOptions } from './certificates'

/** How long resumed sessions may go on from one full handshake, in ms, before the certificate is checked afresh. */
export const FULL_HANDSHAKE_EVERY = 5 * 60_000

interface Kept {
  session: Buffer
  /** When the full handshake this chain of resumed sessions started from verified the certificate. */
  verifiedAt: number
}

/**
 * What an agent's TLS connections to the rendezvous share: one secure
 * context, built once instead of for every CONNECT (building one costs
 * about as much as the rest of the client's handshake), and the latest
 * session ticket of each server, so that a replacement connection resumes
 * the session: the server then neither sends nor signs its certificate,
 * and the agent does not verify it again. A ticket is only kept from a
 * connection whose certificate was accepted, and a chain of resumptions
 * ends `fullEvery` ms after the full handshake it started from, so a
 * certificate that changed on a running server is checked within that time.
 */
export class TlsReuse {
  readonly #context: tls.SecureContext
  readonly #sessions = new Map<string, Kept>()
  readonly #fullEvery: number
  readonly #now: () => number

  constructor (ca: tls.SecureContextOptions['ca'], fullEvery = FULL_HANDSHAKE_EVERY, now: () => number = Date.now) {
    this.#context = tls.createSecureContext(trustOptions(ca))
    this.#fullEvery = fullEvery
    this.#now = now
  }

  /** Options for tls.connect() to `server` (its host:port). */
  options (server: string): { secureContext: tls.SecureContext, session?: Buffer } {
    const kept = this.#sessions.get(server)
    if (kept !== undefined && this.#now() - kept.verifiedAt >= this.#fullEvery) this.#sessions.delete(server)
    return { secureContext: this.#context, session: this.#sessions.get(server)?.session }
  }

  /** Keeps the tickets `socket` receives from `server` while `accepted()` says its certificate was. */
  remember (server: string, socket: tls.TLSSocket, accepted: () => boolean): void {
    socket.on('session', (session: Buffer) => {
      if (!accepted()) return
      const verifiedAt = socket.isSessionReused() ? this.#sessions.get(server)?.verifiedAt : this.#now()
      // A resumed connection whose chain was dropped meanwhile starts none: the next one makes a full handshake.
      if (verifiedAt !== undefined) this.#sessions.set(server, { session, verifiedAt })
    })
  }

  /** Drops the ticket of a server whose certificate was refused, so the next connection checks it afresh. */
  forget (server: string): void {
    this.#sessions.delete(server)
  }
}
