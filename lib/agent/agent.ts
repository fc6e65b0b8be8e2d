import { EventEmitter } from 'node:events'
import type * as net from 'node:net'
import { createV1Token } from '../tokens/v1'
import { RendezvousCertificateError } from './certificates'
import { HandshakeError, isLotFull, lotFullError, openParked, type Parked } from './connection'
import { AgentClosedError, authMessage, RendezvousAuthError, type AgentEvents, type AgentStats, type ErrorPhase } from './events'
import { resolveAgentOptions, type RendezvousAgentOptions, type ResolvedAgentOptions } from './options'
import { honouredRetryAfter } from './backoff'
import { isUnreachable } from './probe'
import { forwardToServer, forwardToLocal } from './forward'
import { LotCap } from './lot-cap'
import { NodePicker } from './node-picker'
import { watchParked } from './parked-watch'
import { Retirements } from './retire'
import { MAX_CONNECTING, Slots, type Slot } from './slots'
import { outOfDescriptors, poolThatFits, poolWarning } from './descriptors'
import { Relays } from './drain'
import { RetrySchedule } from './retry'
import { TlsReuse } from './tls-reuse'

export { AgentOptionError, type RendezvousAgentOptions } from './options'
export { AgentClosedError, RendezvousAuthError, type AgentEvents, type AgentStats, type ErrorPhase } from './events'
export { RendezvousCertificateError, type CertificateProblem } from './certificates'
export { MAX_CONNECTING } from './slots'

export class RendezvousAgent extends EventEmitter<AgentEvents> {
  readonly #opts: ResolvedAgentOptions
  readonly #retry: RetrySchedule
  readonly #slots = new Slots()
  readonly #relays = new Relays()
  /** Parked connections let go, until the rendezvous closes them. */
  readonly #retiring = new Retirements()
  #state: 'idle' | 'running' | 'closing' | 'closed' = 'idle'
  #degraded = false
  // Whether anything ever parked: a certificate refused before that is a setup mistake, not a passing fault.
  #everParked = false
  // The http:// URLs that parked: plain is right for them, whatever a failure looks like later.
  readonly #plainParked = new Set<string>()
  /** Closing without a grace for relayed connections: after a fatal refusal. */
  #waitingForRelays = false
  // While the rendezvous says its lot is full, the pool is not topped up beyond what it holds.
  readonly #lot: LotCap
  #active = 0
  #closing?: Promise<void>
  #started?: Promise<void>
  readonly #counts = { attempts: 0, taken: 0, failures: 0, dropped: 0, replaced: 0 }
  readonly #nodes: NodePicker
  // One secure context and the servers' session tickets, shared by every CONNECT over TLS.
  readonly #tls?: TlsReuse
  // What the open-file limit holds: parked connections and those taken, each of which holds two (descriptors.ts).
  readonly #fits: number
  /** The pool kept: `pool`, or less where the open-file limit holds fewer. */
  readonly #pool: number

  constructor (options: RendezvousAgentOptions) {
    super()
    this.#opts = resolveAgentOptions(options)
    this.#nodes = new NodePicker(this.#opts.urls)
    this.#fits = poolThatFits(this.#opts.openFileLimit) ?? Infinity
    this.#pool = Math.min(this.#opts.pool, this.#fits)
    const { backoffBase, backoffMax, probeInterval, connectTimeout } = this.#opts
    this.#retry = new RetrySchedule({
      backoffBase,
      backoffMax,
      probeInterval,
      connectTimeout,
      pick: () => this.#nodes.pick(),
      ready: () => this.#fill(),
      waiting: (info) => this.emit('backoff', info)
    })
    this.#lot = new LotCap({ backoffBase, backoffMax, grow: () => this.#fill() })
    if (this.#opts.urls.some(url => url.protocol === 'https:')) this.#tls = new TlsReuse(this.#opts.ca)
  }

  get stats (): AgentStats {
    let parked = 0
    for (const slot of this.#slots) if (slot.socket !== undefined) parked++
    return { connecting: this.#slots.size - parked, parked, active: this.#active, ...this.#counts }
  }

  /**
   * Starts parking connections. Resolves once the first one is parked, or
   * when close() comes first; rejects if the credentials are refused before.
   * Called again while the agent runs, it returns the same promise.
   */
  start (): Promise<void> {
    // As close() does: two parts of a program that each start the agent both wait for its first parked connection.
    if (this.#state === 'running') return this.#started!
    if (this.#state !== 'idle') return Promise.reject(new AgentClosedError())
    this.#state = 'running'
    // One probe first: wrong credentials then cost the server a single failed attempt, not a pool's worth.
    this.#degraded = true
    if (this.#opts.insecure) {
      this.#warn('TLS certificate verification is OFF: anyone on the path can impersonate the rendezvous server and receive this service\'s traffic', 'RENDEZVOUS_INSECURE_TLS')
    }
    const tooLarge = poolWarning(this.#opts.pool, this.#opts.openFileLimit)
    if (tooLarge !== undefined) this.#warn(tooLarge, 'RENDEZVOUS_POOL_OVER_FILE_LIMIT')
    const first = new Promise<void>((resolve, reject) => {
      const settle = (): void => { this.off('parked', done); this.off('close', done); this.off('fatal', failed) }
      const done = (): void => { settle(); resolve() }
      const failed = (err: Error): void => { settle(); reject(err) }
      this.on('parked', done)
      this.on('close', done)
      this.on('fatal', failed)
    })
    this.#started = first
    this.#fill()
    return first
  }

  /**
   * Lets parked connections go, gives relayed ones (and requests that were
   * already on their way into a parked one) `closeGrace` to finish, then cuts them.
   */
  close (): Promise<void> {
    if (this.#closing !== undefined && this.#waitingForRelays) {
      // Closing after a fatal refusal, which waits for relayed connections however long: from now, closeGrace.
      this.#waitingForRelays = false
      setTimeout(() => this.#relays.cut(), this.#opts.closeGrace).unref()
    }
    this.#closing ??= this.#shutdown(this.#opts.closeGrace)
    return this.#closing
  }

  /** Like close(), without the grace: relayed connections are cut now. */
  destroy (): Promise<void> {
    this.#closing ??= this.#shutdown(0)
    const closing = this.#closing
    this.#slots.discardAll()
    this.#retiring.cutAll()
    this.#relays.cut()
    return closing
  }

  /** `graceMs` undefined waits for relayed connections as long as they last. */
  async #shutdown (graceMs: number | undefined): Promise<void> {
    this.#state = 'closing'
    this.#retry.stop()
    this.#lot.reset()
    const deadline = graceMs === undefined ? undefined : Date.now() + graceMs
    const left = (): number | undefined => deadline === undefined ? undefined : Math.max(0, deadline - Date.now())
    if (graceMs === 0) this.#slots.discardAll()
    // Not closed outright: the rendezvous may be writing a request into one right now. A CONNECT still in flight
    // may be parked there already, with a request on its way: it is let finish, and then let go too (#onParked).
    for (const slot of this.#slots) if (slot.socket !== undefined) this.#letGo(slot)
    await this.#slots.emptied(left())
    await this.#retiring.settle(left())
    await this.#relays.drain(left())
    this.#state = 'closed'
    this.emit('close')
  }

  // Tops the pool up. While the rendezvous is failing, one probe at a time is enough. Each connection being
  // relayed holds two descriptors, so under a tight open-file limit it takes one parked connection's place.
  #fill (): void {
    if (this.#state !== 'running' || this.#retry.pending) return
    let live = 0
    let connecting = 0
    for (const slot of this.#slots) {
      if (!slot.retiring) live++
      if (slot.socket === undefined) connecting++
    }
    const inFlight = this.#degraded ? 1 : MAX_CONNECTING
    const target = Math.min(this.#pool, this.#lot.value, this.#fits - this.#active)
    while (live < target && connecting < inFlight) {
      this.#open()
      live++
      connecting++
    }
  }

  #open (): void {
    const url = this.#nodes.pick()
    const slot: Slot = { abort: new AbortController(), url, retiring: false }
    this.#slots.add(slot)
    this.#counts.attempts++
    const { id, secret, ca, insecure, connectTimeout, keepAlive, caFingerprints } = this.#opts
    openParked({
      url, id, ca, insecure, keepAlive, expected: caFingerprints, timeout: connectTimeout, signal: slot.abort.signal, token: createV1Token(id, secret), reuse: this.#tls, parkedBefore: this.#plainParked.has(url.href)
    }).then((parked) => this.#onParked(slot, parked), (err: Error) => this.#onFailed(slot, err))
  }

  #onFailed (slot: Slot, err: Error): void {
    this.#slots.release(slot)
    this.#nodes.failed(slot.url)
    if (this.#state !== 'running') return
    this.#counts.failures++
    err = outOfDescriptors(err, this.#opts.openFileLimit) ?? err
    if (err instanceof HandshakeError && (err.status === 401 || err.status === 403)) {
      return this.#fatal(new RendezvousAuthError(authMessage(this.#opts.id, err.status, err.headers.date, this.#everParked), err.status))
    }
    if (err instanceof RendezvousCertificateError && !this.#everParked) return this.#fatal(err)
    this.#retry.unreachable = isUnreachable(err)
    const retryAfter = err instanceof HandshakeError ? honouredRetryAfter(err.retryAfter, this.#opts.backoffMax) : undefined
    if (err instanceof HandshakeError && isLotFull(err) && this.stats.parked > 0) {
      const { parked } = this.stats
      const wait = this.#lot.full(parked, retryAfter)
      if (wait !== undefined) this.#report(lotFullError(err, parked, this.#pool, wait), 'connect')
      return
    }
    this.#report(err, 'connect')
    this.#retryLater(err.message, retryAfter)
  }

  #onParked (slot: Slot, { socket, rest }: Parked): void {
    if (this.#state === 'closing' && this.#slots.has(slot)) {
      slot.socket = socket
      if (rest.length > 0) this.#onTaken(slot, rest)
      else this.#letGo(slot)
      return
    }
    if (this.#state !== 'running' || !this.#slots.has(slot)) {
      socket.destroy()
      return
    }
    slot.socket = socket
    slot.parkedAt = Date.now()
    this.#degraded = false
    this.#everParked = true
    if (slot.url.protocol === 'http:') this.#plainParked.add(slot.url.href)
    this.#retry.parked()
    this.#lot.parked(this.stats.parked, this.#pool)
    this.#retireOne()
    this.emit('parked', { parked: this.stats.parked, pool: this.#pool })
    // The 200 and the client's first bytes can share a packet: then it is taken already.
    if (rest.length > 0) return this.#onTaken(slot, rest)
    this.#watch(slot, socket)
    this.#fill()
  }

  #watch (slot: Slot, socket: net.Socket): void {
    slot.unwatch = watchParked(socket, (head) => this.#onTaken(slot, head), (drop) => this.#onDropped(slot, drop))
    if (this.#opts.maxAge > 0) {
      const age = Math.round(this.#opts.maxAge * (0.8 + 0.2 * Math.random()))
      slot.ageTimer = setTimeout(() => this.#retire(slot), age)
    }
  }

  #onTaken (slot: Slot, head: Buffer): void {
    const socket = slot.socket as net.Socket
    this.#slots.release(slot)
    this.#counts.taken++
    this.#active++
    this.#retry.succeeded()
    const started = Date.now()
    socket.once('close', () => {
      this.#active--
      this.emit('released', { active: this.#active })
      // Its descriptors are back: the place it took in the pool (#fill) is free again.
      if (this.#fits !== Infinity) this.#fill()
    })
    if (this.#opts.server !== undefined) {
      forwardToServer(socket, head, this.#opts.server)
    } else {
      const local = forwardToLocal(socket, head, this.#opts.target!, (err) => this.#report(err, 'relay'),
        (outcome) => this.emit('relayed', { ...outcome, durationMs: Date.now() - started }))
      this.#relays.add(socket, local)
    }
    this.emit('taken', { parked: this.stats.parked, active: this.#active })
    this.#fill()
  }

  #onDropped (slot: Slot, drop: { reason: string, error?: Error }): void {
    this.#slots.release(slot)
    this.#nodes.failed(slot.url)
    if (this.#state !== 'running') return
    this.#counts.dropped++
    // A restarted server may allow more.
    this.#lot.reset()
    this.emit('dropped', { parked: this.stats.parked, ...drop })
    this.#retryLater(`a parked connection was closed: ${drop.reason}`, 0, true)
  }

  #retire (slot: Slot): void {
    slot.retiring = true
    this.#fill()
  }

  // Called when a fresh connection has parked: only now may an old one go.
  #retireOne (): void {
    const oldest = this.#slots.oldestRetiring()
    if (oldest === undefined) return
    const age = Date.now() - oldest.parkedAt!
    this.#counts.replaced++
    this.#letGo(oldest)
    this.emit('replaced', { age })
  }

  // Not closed: the rendezvous may be writing a client's request into it this very moment (retire.ts).
  #letGo (slot: Slot): void {
    this.#slots.release(slot)
    this.#retiring.letGo(slot.socket!, (head) => this.#onTaken(slot, head))
  }

  #retryLater (reason: string, retryAfter = 0, dropped = false): void {
    this.#degraded = true
    this.#retry.failed(reason, retryAfter, dropped)
  }

  #fatal (err: RendezvousAuthError | RendezvousCertificateError): void {
    this.emit('fatal', err)
    // Nothing more parks, but exchanges already relayed are their clients' (an ID removed at the rendezvous leaves
    // them to finish on their own): they end when their clients or the local service end them, or at destroy().
    if (this.#closing === undefined) {
      this.#waitingForRelays = true
      this.#closing = this.#shutdown(undefined)
    }
    this.#closing.catch(() => {})
  }

  // Transient trouble is retried, so it must not crash a process that did not ask to hear about it.
  #report (err: Error, phase: ErrorPhase): void {
    if (this.listenerCount('error') > 0) this.emit('error', err, phase)
  }

  #warn (message: string, code: string): void {
    if (this.listenerCount('warning') > 0) this.emit('warning', message)
    else process.emitWarning(message, { code })
  }
}
