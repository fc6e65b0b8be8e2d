import tls from 'node:tls'

/**
 * What an agent's TLS connections to the rendezvous share: one secure
 * context, built once instead of for every CONNECT (building one costs
 * about as much as the rest of the client's handshake), and the latest
 * session ticket of each server, so that a replacement connection resumes
 * the session: the server then neither sends nor signs its certificate,
 * and the agent does not verify it again. A ticket is only kept from a
 * connection whose certificate was accepted.
 */
export class TlsReuse {
  readonly #context: tls.SecureContext
  readonly #sessions = new Map<string, Buffer>()

  constructor (ca: tls.SecureContextOptions['ca']) {
    this.#context = tls.createSecureContext({ ca })
  }

  /** Options for tls.connect() to `server` (its host:port). */
  options (server: string): { secureContext: tls.SecureContext, session?: Buffer } {
    return { secureContext: this.#context, session: this.#sessions.get(server) }
  }

  /** Keeps the tickets `socket` receives from `server` while `accepted()` says its certificate was. */
  remember (server: string, socket: tls.TLSSocket, accepted: () => boolean): void {
    socket.on('session', (session: Buffer) => {
      if (accepted()) this.#sessions.set(server, session)
    })
  }

  /** Drops the ticket of a server whose certificate was refused, so the next connection checks it afresh. */
  forget (server: string): void {
    this.#sessions.delete(server)
  }
}
