import type { Server } from 'node:net'
import type { Socket } from 'node:net'
import type { AddressKey } from './address-group'
import { normaliseAddress } from './auth-throttle'
import { acceptedSocket } from './socket-fd'

// The key a socket was counted under, so that its close uncounts exactly that one.
const kCountedAs = Symbol('rendezvous.countedAs')
type CountedSocket = Socket & { [kCountedAs]?: string }

/**
 * The cap of one relay: `add` counts another server's connections with the
 * first's; `remove` takes it off every server; `exempt` stops counting one
 * socket.
 */
export interface ConnectionCap {
  add: (server: Server) => void
  remove: () => void
  exempt: (socket: Socket) => void
}

/** 0 for no cap. */
export interface ConnectionLimits {
  perAddress: number
  total: number
}

export interface CapRefusal {
  reason: 'per_address_cap' | 'total_cap'
  address: string
  /** What the address is counted under: itself, or its IPv6 subnet. */
  key: string
}

/**
 * Caps the connections held open at once, per client address and in all,
 * counted from the TCP accept to the close, whatever they turn into (a
 * client's splice, an idle connection, or a TLS handshake that never
 * starts). Each costs a file descriptor and buffers, and Node only closes a
 * silent one after its request timeout, so without caps one address, or
 * many, could take every descriptor and lock out everyone else. A connection
 * past a cap is closed at once, before TLS or HTTP could give it a status
 * line to answer with.
 *
 * `exempt` is for a hidden server's connection once its CONNECT is accepted:
 * from then on the per-ID and total parking limits and maxSpliced bound it,
 * and counting it here too would let a busy hidden server's own parked and
 * spliced connections lock out its replacements, and every client behind
 * the same address.
 *
 * The servers `add` joins share the counts: Fastify's second server for
 * `localhost` is the same relay on another address, and a client that can
 * reach both may not hold twice the cap by using both.
 */
export function capConnections (server: Server, limits: ConnectionLimits, keyOf: AddressKey, onRefused: (refusal: CapRefusal) => void): ConnectionCap {
  const open = new Map<string, number>()
  let total = 0
  // One listener for every socket rather than a closure each, which parked connections would carry for hours.
  // At most once per socket, whichever of its close and its exemption comes first.
  function release (this: CountedSocket): void {
    const key = this[kCountedAs]
    if (key === undefined) return
    this[kCountedAs] = undefined
    this.removeListener('close', release)
    total--
    if (limits.perAddress <= 0) return
    const left = (open.get(key) ?? 1) - 1
    if (left > 0) open.set(key, left)
    else open.delete(key)
  }
  const onConnection = (socket: Socket): void => {
    // The keyer normalises the address itself; the refusal, rare, names it normalised too.
    const raw = socket.remoteAddress ?? 'unknown'
    const key = keyOf(raw)
    const count = open.get(key) ?? 0
    const reason = limits.perAddress > 0 && count >= limits.perAddress
      ? 'per_address_cap'
      : limits.total > 0 && total >= limits.total ? 'total_cap' : undefined
    if (reason !== undefined) {
      onRefused({ reason, address: normaliseAddress(raw), key })
      socket.destroy()
      return
    }
    total++
    if (limits.perAddress > 0) open.set(key, count + 1)
    ;(socket as CountedSocket)[kCountedAs] = key
    socket.on('close', release)
  }
  const servers = new Set<Server>()
  const add = (target: Server): void => {
    if (servers.has(target)) return
    servers.add(target)
    // First, so that a refused connection never reaches TLS or the HTTP parser.
    target.prependListener('connection', onConnection)
  }
  add(server)
  return {
    add,
    remove: () => {
      for (const target of servers) target.removeListener('connection', onConnection)
      servers.clear()
    },
    exempt: socket => { release.call(acceptedSocket(socket) as CountedSocket) }
  }
}
