import type { Server, Socket } from 'node:net'
import { normaliseAddress } from '../relay/auth-throttle'

/** Links that have not authenticated yet, in all and from one address: each may hold a request (MAX_PAYLOAD) meanwhile. */
export const MAX_UNAUTHENTICATED = 64
export const MAX_UNAUTHENTICATED_PER_ADDRESS = 8
/** How long an address whose link authenticated stays exempt from the per-address limit. */
export const TRUSTED_FOR_MS = 10 * 60_000

/** Why a link was refused at accept: too many links from its address, or in all, still to authenticate. */
export type GateRefusal = { address: string, limit: 'address' | 'total' }

/**
 * Counts the peer links that have not authenticated yet, from the TCP
 * accept (before any TLS handshake) until their token is verified or they
 * close, and refuses new ones past the limits. A node sends one link per
 * forwarded request and authenticates it within moments; only links that
 * never do (anyone who reaches the port) pile up here. An address that has
 * sent a link that authenticated is another node: a burst of its forwards
 * is not held to the per-address limit (the total still applies).
 */
export class PeerGate {
  readonly #max: number
  readonly #maxPerAddress: number
  readonly #perAddress = new Map<string, number>()
  // By connection (addresses and ports): a TLS link is another socket object than the TCP one admitted.
  readonly #waiting = new Map<string, () => void>()
  // Addresses whose links authenticated, until when: other nodes, oldest first.
  readonly #trusted = new Map<string, number>()
  #total = 0

  constructor (max = MAX_UNAUTHENTICATED, maxPerAddress = MAX_UNAUTHENTICATED_PER_ADDRESS) {
    this.#max = max
    this.#maxPerAddress = maxPerAddress
  }

  /** Counts a socket just accepted, until it closes or authenticated() is called for its link; or says why it is refused. */
  admit (raw: Socket): GateRefusal | undefined {
    const address = normaliseAddress(raw.remoteAddress) ?? 'unknown'
    const fromAddress = this.#perAddress.get(address) ?? 0
    if (fromAddress >= this.#maxPerAddress && !this.#isTrusted(address)) return { address, limit: 'address' }
    if (this.#total >= this.#max) return { address, limit: 'total' }
    this.#perAddress.set(address, fromAddress + 1)
    this.#total++
    const key = connectionKey(raw)
    let counted = true
    const release = (): void => {
      if (!counted) return
      counted = false
      this.#total--
      const left = (this.#perAddress.get(address) ?? 1) - 1
      if (left > 0) this.#perAddress.set(address, left)
      else this.#perAddress.delete(address)
      if (this.#waiting.get(key) === release) this.#waiting.delete(key)
    }
    this.#waiting.set(key, release)
    raw.once('close', release)
    return undefined
  }

  /** The link's token was verified: it no longer counts. Read its key before it may have closed. */
  authenticated (key: string): void {
    const release = this.#waiting.get(key)
    if (release === undefined) return
    release()
    const address = normaliseAddress(key.slice(0, key.indexOf(' '))) ?? 'unknown'
    this.#trusted.delete(address)
    this.#trusted.set(address, Date.now() + TRUSTED_FOR_MS)
  }

  #isTrusted (address: string): boolean {
    const now = Date.now()
    for (const [old, until] of this.#trusted) {
      if (until > now) break
      this.#trusted.delete(old)
    }
    return this.#trusted.has(address)
  }

  /** Links waiting to authenticate, in all. */
  get waiting (): number {
    return this.#total
  }
}

/** What names one connection to the listener, the same on a TLS socket as on the TCP socket under it. */
export function connectionKey (socket: Socket): string {
  return `${socket.remoteAddress ?? ''} ${socket.remotePort ?? ''} ${socket.localAddress ?? ''} ${socket.localPort ?? ''}`
}

/**
 * Lets the server's own 'connection' listeners (tls.Server's starts the
 * handshake) see only the sockets `admit` takes: a refused one costs no
 * TLS state and no handshake.
 */
export function gateConnections (server: Server, admit: (raw: Socket) => boolean): void {
  const own = server.listeners('connection') as Array<(raw: Socket) => void>
  server.removeAllListeners('connection')
  server.on('connection', (raw: Socket) => {
    if (admit(raw)) for (const listener of own) listener.call(server, raw)
  })
}
