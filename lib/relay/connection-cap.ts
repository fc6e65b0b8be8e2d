import type { Server } from 'node:net'
import type { Socket } from 'node:net'
import { normaliseAddress } from './auth-throttle'
import { acceptedSocket } from './socket-fd'

// The address a socket was counted under, so that its close uncounts exactly that one.
const kCountedAs = Symbol('rendezvous.countedAs')
type CountedSocket = Socket & { [kCountedAs]?: string }

/** The cap of one server: `remove` takes it off; `exempt` stops counting one socket. */
export interface ConnectionCap {
  remove: () => void
  exempt: (socket: Socket) => void
}

/**
 * Caps the connections one client address holds open at once, counted from
 * the TCP accept to the close, whatever they turn into (a client's splice,
 * an idle connection, or a TLS handshake that never starts). Each costs a
 * file descriptor and buffers, and Node only closes a silent one after its
 * request timeout, so without a cap one address could take every descriptor
 * and lock out everyone else. A connection past the cap is closed at once,
 * before TLS or HTTP could give it a status line to answer with.
 *
 * `exempt` is for a hidden server's connection once its CONNECT is accepted:
 * from then on the per-ID and total parking limits and maxSpliced bound it,
 * and counting it here too would let a busy hidden server's own parked and
 * spliced connections lock out its replacements, and every client behind
 * the same address.
 */
export function capConnectionsPerAddress (server: Server, max: number, onRefused: (address: string) => void): ConnectionCap {
  const open = new Map<string, number>()
  // One listener for every socket rather than a closure each, which parked connections would carry for hours.
  function release (this: CountedSocket): void {
    const address = this[kCountedAs] ?? 'unknown'
    const left = (open.get(address) ?? 1) - 1
    if (left > 0) open.set(address, left)
    else open.delete(address)
  }
  const onConnection = (socket: Socket): void => {
    const address = normaliseAddress(socket.remoteAddress ?? 'unknown')
    const count = open.get(address) ?? 0
    if (count >= max) {
      onRefused(address)
      socket.destroy()
      return
    }
    open.set(address, count + 1)
    ;(socket as CountedSocket)[kCountedAs] = address
    socket.on('close', release)
  }
  // First, so that a refused connection never reaches TLS or the HTTP parser.
  server.prependListener('connection', onConnection)
  return {
    remove: () => { server.removeListener('connection', onConnection) },
    exempt: socket => {
      const counted = acceptedSocket(socket) as CountedSocket
      if (counted[kCountedAs] === undefined) return
      counted.removeListener('close', release)
      release.call(counted)
      counted[kCountedAs] = undefined
    }
  }
}
