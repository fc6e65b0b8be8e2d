import type { Socket } from 'node:net'
import { isRetirement } from '../http/retirement'
import { WaitingLine } from './waiting-line'

export interface LotLimits {
  maxPerId: number
  maxTotal: number
  maxWaitersPerId: number
  maxWaiters: number
  /**
   * One source's share of an ID's waiting places (maxWaitersPerAddress): a
   * source holding this many is refused while no more than this many places
   * are left for the ID. 0 or absent: no share.
   */
  maxWaitersPerSource?: number
  keepAliveInitialDelay: number
}

/** Why a parked socket left the lot without being used; `retired`: its hidden server let it go (http/retirement.ts). */
export type ParkedExit = 'peer_closed' | 'early_data' | 'evicted' | 'retired'

export interface LotEvents {
  /** A parked socket left without serving anyone. */
  onParkedExit?: (id: string, why: ParkedExit) => void
  /** The number of parked sockets or waiters changed; `id` is set when the parked count of that ID did. */
  onChange?: (parked: number, waiting: number, id?: string) => void
}

interface Parked {
  id: string
  socket: Socket
}

// Where a parked socket's entry is found by the lot's shared listeners.
const kParked = Symbol('rendezvous.parked')
type ParkedSocket = Socket & { [kParked]?: Parked }

interface Waiter {
  resolve: (socket: Socket | undefined) => void
}

/** `full`: which limit refused the wait, maxWaiters ('all'), maxWaitersPerId ('id') or the source's share of the latter ('source'). */
export type WaitOutcome = { socket: Socket } | { full: 'all' | 'id' | 'source' }

/**
 * Parked hidden-server sockets and the mobile clients waiting for them,
 * per ID: sockets newest first (take), clients in turn by source
 * (waiting-line.ts). A socket handed out has none of the
 * lot's listeners left on it and is paused, so no byte is lost in between.
 */
export class ParkingLot {
  readonly #parked = new Map<string, Set<Parked>>()
  readonly #waiters = new Map<string, WaitingLine<Waiter>>()
  #evictions = 0
  #parkedCount = 0
  #waitingCount = 0

  readonly #limits: LotLimits
  readonly #events: LotEvents
  // One listener of each kind for all parked sockets: closures per socket cost
  // about 300 B of heap for every parked connection (docs/performance.md).
  readonly #onEarlyData: (this: Socket, chunk: Buffer) => void
  readonly #onPeerClosed: (this: Socket) => void

  constructor (limits: LotLimits, events: LotEvents = {}) {
    this.#limits = limits
    this.#events = events
    const lot = this
    // Bytes from a parked socket before any client is matched would corrupt the first relayed exchange.
    this.#onEarlyData = function (this: Socket, chunk: Buffer) { lot.#leave(this, isRetirement(chunk) ? 'retired' : 'early_data') }
    this.#onPeerClosed = function (this: Socket) { lot.#leave(this, 'peer_closed') }
  }

  get size (): { parked: number, waiting: number } {
    return { parked: this.#parkedCount, waiting: this.#waitingCount }
  }

  parkedFor (id: string): number {
    return this.#parked.get(id)?.size ?? 0
  }

  /** Parked sockets and waiting clients of every ID that has either, for live views and per-ID metrics. */
  perId (): Map<string, { parked: number, waiting: number }> {
    const out = new Map<string, { parked: number, waiting: number }>()
    for (const [id, set] of this.#parked) out.set(id, { parked: set.size, waiting: 0 })
    for (const [id, set] of this.#waiters) out.set(id, { parked: out.get(id)?.parked ?? 0, waiting: set.size })
    return out
  }

  /** Whether one more socket for `id` fits. A waiting client always makes room. */
  hasRoom (id: string): boolean {
    if ((this.#waiters.get(id)?.size ?? 0) > 0) return true
    return this.#parkedCount < this.#limits.maxTotal && this.parkedFor(id) < this.#limits.maxPerId
  }

  /** Parks a socket that has just been answered 200, or hands it straight to the first waiting client. */
  park (id: string, socket: Socket): void {
    const waiter = this.#firstWaiter(id)
    if (waiter !== undefined) {
      waiter.resolve(socket)
      return
    }
    socket.setKeepAlive(true, this.#limits.keepAliveInitialDelay)
    const entry: Parked = { id, socket }
    ;(socket as ParkedSocket)[kParked] = entry
    socket.on('data', this.#onEarlyData)
    socket.on('end', this.#onPeerClosed)
    socket.on('close', this.#onPeerClosed)
    // Read while parked, whoever paused it before: the lot must hear it close or send early.
    socket.resume()
    let set = this.#parked.get(id)
    if (set === undefined) {
      set = new Set()
      this.#parked.set(id, set)
    }
    set.add(entry)
    this.#parkedCount++
    this.#changed(id)
  }

  /**
   * The most recently parked live socket for `id`, taken out of the lot.
   * Newest first: a hidden server that lost its network, or restarted,
   * parks anew while its old connections may still look parked here until
   * TCP keep-alive finds them dead; the newest is the likeliest to work.
   */
  take (id: string): Socket | undefined {
    const set = this.#parked.get(id)
    if (set === undefined) return undefined
    for (const entry of [...set].reverse()) {
      this.#unpark(id, entry)
      this.#release(entry)
      if (!entry.socket.destroyed && entry.socket.writable) return entry.socket
      // It died in this turn of the event loop, before its close reached the lot: counted as that close would have been.
      entry.socket.destroy()
      this.#events.onParkedExit?.(id, 'peer_closed')
    }
    return undefined
  }

  /**
   * Returns a socket that take() gave out and nobody used (not a byte
   * written or read): parked again, or handed to a waiting client. False,
   * and the socket is left to the caller, when it is closed, there is no
   * room, or the lot evicted anything since `evictionsAtTake` (`evictions`
   * read when it was taken).
   */
  putBack (id: string, socket: Socket, evictionsAtTake: number): boolean {
    // An eviction since the take may have been this ID's removal, or the cut-off of the secret this socket
    // authenticated with; the lot cannot tell which ID it was, so any eviction closes it (its server parks anew).
    if (evictionsAtTake !== this.#evictions) return false
    if (socket.destroyed || !socket.writable || !this.hasRoom(id)) return false
    // Bytes it sent while it was out of the lot, read but never relayed: handed on, they would reach the next client.
    if (socket.readableLength > 0) return false
    // take() paused it; park() reads it again if it stays parked.
    this.park(id, socket)
    return true
  }

  /**
   * A socket for `id` now, or the first one parked within `timeoutMs`;
   * undefined on timeout or when the lot closes the wait. `signal` lets the
   * caller give up (the client went away). `source` is who waits (a client
   * address, or its subnet): sources are served in turn, and each is held
   * to its share of the ID's places. `admitted`: a client let in before,
   * waiting again, which the limits do not refuse.
   */
  async wait (id: string, timeoutMs: number, signal?: AbortSignal, source = '', admitted = false): Promise<WaitOutcome | undefined> {
    const now = this.take(id)
    if (now !== undefined) return { socket: now }
    const full = admitted ? undefined : this.#full(id, source)
    if (full !== undefined) return { full }
    if (timeoutMs <= 0) return undefined
    const socket = await new Promise<Socket | undefined>(resolve => {
      const line = this.#waiters.get(id) ?? new WaitingLine<Waiter>()
      this.#waiters.set(id, line)
      const waiter: Waiter = {
        resolve: (value) => {
          clearTimeout(timer)
          signal?.removeEventListener('abort', onAbort)
          if (line.delete(source, waiter)) this.#waitingCount--
          if (line.size === 0 && this.#waiters.get(id) === line) this.#waiters.delete(id)
          this.#changed()
          resolve(value)
        }
      }
      const onAbort = (): void => waiter.resolve(undefined)
      const timer = setTimeout(onAbort, timeoutMs)
      signal?.addEventListener('abort', onAbort, { once: true })
      line.add(source, waiter)
      this.#waitingCount++
      this.#changed()
    })
    return socket === undefined ? undefined : { socket }
  }

  // A source's share binds only while the ID's places run short: alone, a source may fill all but one share of them,
  // and however many it holds, the last share stays for everyone else.
  #full (id: string, source: string): 'all' | 'id' | 'source' | undefined {
    const waiting = this.#waiters.get(id)
    const forId = waiting?.size ?? 0
    if (this.#waitingCount >= this.#limits.maxWaiters) return 'all'
    if (forId >= this.#limits.maxWaitersPerId) return 'id'
    const share = this.#limits.maxWaitersPerSource ?? 0
    if (share > 0 && (waiting?.countOf(source) ?? 0) >= share && this.#limits.maxWaitersPerId - forId <= share) return 'source'
    return undefined
  }

  /** How many evictions there have been: putBack() refuses a socket taken before the latest. */
  get evictions (): number {
    return this.#evictions
  }

  /** Closes every socket parked for `id` (the ID was removed); its waiters are told there is none. */
  evict (id: string): number {
    this.#evictions++
    const set = this.#parked.get(id)
    let closed = 0
    for (const entry of [...(set ?? [])]) {
      this.#unpark(id, entry)
      this.#release(entry)
      entry.socket.destroy()
      this.#events.onParkedExit?.(id, 'evicted')
      closed++
    }
    for (const waiter of this.#waiters.get(id)?.all() ?? []) waiter.resolve(undefined)
    return closed
  }

  /** Empties the lot: parked sockets are destroyed, waiters get undefined. */
  closeAll (): void {
    for (const id of [...this.#parked.keys(), ...this.#waiters.keys()]) this.evict(id)
  }

  #firstWaiter (id: string): Waiter | undefined {
    return this.#waiters.get(id)?.next()
  }

  #leave (socket: Socket, why: ParkedExit): void {
    const entry = (socket as ParkedSocket)[kParked]
    if (entry === undefined || !this.#unpark(entry.id, entry)) return
    this.#release(entry)
    socket.destroy()
    this.#events.onParkedExit?.(entry.id, why)
  }

  /** Takes the lot's listeners off a socket that leaves it, paused, so that no byte is lost until its next owner reads. */
  #release (entry: Parked): void {
    const socket = entry.socket as ParkedSocket
    socket.pause()
    socket.removeListener('data', this.#onEarlyData)
    socket.removeListener('end', this.#onPeerClosed)
    socket.removeListener('close', this.#onPeerClosed)
    // Not `delete`: it would turn every socket that was ever parked into a slow dictionary object.
    if (socket[kParked] === entry) socket[kParked] = undefined
  }

  #unpark (id: string, entry: Parked): boolean {
    const set = this.#parked.get(id)
    if (set === undefined || !set.delete(entry)) return false
    if (set.size === 0) this.#parked.delete(id)
    this.#parkedCount--
    this.#changed(id)
    return true
  }

  #changed (id?: string): void {
    this.#events.onChange?.(this.#parkedCount, this.#waitingCount, id)
  }
}
