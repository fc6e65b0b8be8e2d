import { setMaxListeners } from 'node:events'
import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyBaseLogger } from 'fastify'
import { refuse, type Refusal } from '../http/refusals'
import { DEFAULT_LINGER_MS, lingerClose } from '../http/linger'
import { loggedUrl } from '../http/request-summary'
import { closedByEarlierAnswer, pendingResponse, type HeadFacts, type HeadersOnlyRequest } from './handoff'
import { normaliseAddress } from './auth-throttle'
import { stillThere, usable, watchClient, type ClientWatch } from './client-watch'
import { untilAnyAborts, untilDeadline } from './abort-race'
import type { RendezvousMetrics, RequestOutcome } from './metrics'
import type { ParkingLot, WaitOutcome } from './parking-lot'
import type { Registry } from '../registry/registry'
import type { RemoteSource } from './remote-source'
import { splice, untilOver } from './splice'
import type { SpliceSet, SplicedPair } from './splice-set'
import type { SplicePath } from './native-addon'
import { kConnId } from './symbols'
import { logId } from './log-ids'
import { createDecide, type Ticket } from './mobile-decide'
import { refusalLevel } from './log-limit'
import { isThrottleStoreFailure } from './throttle-store-watch'

/** What every line about one mobile request carries. */
interface LineFields { side: 'mobile', reqId: string, address: string | undefined, method: string | undefined, url: string | undefined, id: string | undefined }

export type { SplicedPair }

/** What another node gave: a link to a hidden server there (the head already delivered), or word that the cluster cannot be asked. */
type Remote = { link: Socket } | { unavailable: true }

export interface MobileSideDeps {
  registry: Pick<Registry, 'get' | 'stale'>
  /** Cluster mode: hidden servers parked on other nodes. */
  remote?: RemoteSource
  lot: ParkingLot
  metrics: RendezvousMetrics
  log: FastifyBaseLogger
  /** `maxSplicedPerId`: one ID's share of maxSpliced; 0 or absent for none. */
  limits: { waitTimeout: number, retryAfter: number, spliceIdleTimeout: number, maxSpliced: number, maxSplicedPerId?: number, maxWaitBuffer: number, splice?: SplicePath, lingerTimeout?: number }
  /** Why new relays are refused right now (shutting down, under pressure), if they are. */
  refusing: () => RequestOutcome | undefined
  /** Seconds an address must still wait after probing unknown IDs, 0 if it may go on. */
  coolingOff: (address: string) => Promise<number>
  /** What coolingOff counts an address under (itself, or its IPv6 subnet). */
  sourceOf?: (address: string) => string
  /** Spliced pairs, so close() can reach them, counted per ID for maxSplicedPerId. */
  splices: SpliceSet
}

export interface MobileSide {
  decide: (req: HeadersOnlyRequest, facts: HeadFacts) => Ticket | undefined
  onClaimed: (ticket: Ticket, req: IncomingMessage, socket: Socket, rest: Buffer) => void
  /**
   * Ends every wait for a hidden server now and from now on, here and on
   * other nodes alike: each waiting client gets the answer `refusing()` says
   * (503 with Retry-After when shutting down) instead of waiting out its
   * timeout. For a shutdown, called once `refusing()` says so.
   */
  endWaits: () => void
}

const WAITERS_FULL = {
  all: 'too many clients waiting in all',
  id: 'too many clients waiting for this ID',
  source: 'too many clients from this address waiting for this ID'
} as const

export function createMobileSide (deps: MobileSideDeps): MobileSide {
  const { lot, metrics, limits } = deps
  // Aborted by endWaits(): every wait, local or on other nodes, listens to it besides its client's signal.
  const ending = new AbortController()
  // Every waiting client listens to it, up to maxWaiters at once: no leak, whatever Node's default of 10 warns.
  setMaxListeners(0, ending.signal)

  const decide = createDecide({ registry: deps.registry, log: deps.log, retryAfter: limits.retryAfter })

  const level = refusalLevel(deps.sourceOf, { log: deps.log, side: 'mobile' })
  const refuseWith = (socket: Socket, outcome: RequestOutcome, refusal: Refusal, at: LineFields): void => {
    metrics.request(outcome)
    deps.log[level(outcome, at.address)]({ ...at, outcome, status: refusal.status }, 'rendezvous request refused')
    refuse(socket, at.method === 'HEAD' ? { ...refusal, headOnly: true } : refusal, limits.lingerTimeout)
  }

  /**
   * Whether `id` must wait for the others: it holds its share of maxSpliced,
   * and one more pair would leave less than a share of room (an idle pair
   * holds its place for as long as spliceIdleTimeout lets it, forever by default).
   */
  function overShare (id: string): boolean {
    const share = limits.maxSplicedPerId ?? 0
    return share > 0 && deps.splices.of(id) >= share && limits.maxSpliced - deps.splices.size <= share
  }

  /** Why this request cannot be relayed now, before it waits for anything. */
  async function admission (client: Socket, id: string): Promise<[RequestOutcome, Refusal] | undefined> {
    const busy = { status: 503, retryAfter: limits.retryAfter }
    const refusing = deps.refusing()
    if (refusing !== undefined) return [refusing, { ...busy, message: refusing === 'shutting_down' ? 'shutting down' : 'server under pressure' }]
    if (limits.maxSpliced > 0 && deps.splices.size >= limits.maxSpliced) return ['splices_full', { ...busy, message: 'too many relayed connections' }]
    if (overShare(id)) return ['splices_share_full', { ...busy, message: 'too many relayed connections for this ID' }]
    // An address that probed unknown IDs gets the same answer for known ones, or the answer would tell them apart.
    let coolOff: number
    try {
      coolOff = await deps.coolingOff(client.remoteAddress ?? 'unknown')
    } catch (err) {
      // As an unknown ID's request is answered then (challenge.ts), so that the answer tells no IDs apart.
      if (isThrottleStoreFailure(err)) return ['throttle_unavailable', { ...busy, message: 'try again later' }]
      throw err
    }
    if (coolOff > 0) return ['throttled', { status: 429, message: 'too many requests for unknown IDs', retryAfter: coolOff }]
    return undefined
  }

  /** A parked connection for `id` (here, or in cluster mode on another node, given `head`), or why there is none. */
  async function waitForHidden (id: string, head: () => Buffer, client: Socket, watch: ClientWatch, halfClosed = false): Promise<WaitOutcome | Remote | undefined> {
    const started = process.hrtime.bigint()
    // A connection parked here is taken before any wait is set up: the signal is only made for a client that has to wait.
    const evictionsAtTake = lot.evictions
    const here = lot.take(id)
    const address = client.remoteAddress ?? 'unknown'
    const source = deps.sourceOf?.(address) ?? address
    const found = here !== undefined
      ? { socket: here }
      : await untilAnyAborts([watch.signal, ending.signal], async signal => {
        // A lot's wait does not look at a signal aborted before it began.
        if (signal.aborted) return undefined
        return deps.remote === undefined ? await lot.wait(id, limits.waitTimeout, signal, source) : await waitAnywhere(deps.remote, id, head(), signal, source)
      })
    metrics.waited(Number(process.hrtime.bigint() - started) / 1e9)
    if (found !== undefined && 'socket' in found && !stillThere(client, watch, here !== undefined && halfClosed)) {
      // The client left at the very moment a connection was found: the connection is still clean, so it goes back,
      // read again (take paused it) so that the lot hears it close or its hidden server let it go.
      // One that came through the wait was handed over this very turn: no eviction can have come between.
      if (!lot.putBack(id, found.socket, here !== undefined ? evictionsAtTake : lot.evictions)) found.socket.destroy()
    }
    // A link cannot go back: its hidden server already has the head.
    if (found !== undefined && 'link' in found && !usable(client, watch)) found.link.destroy()
    return found
  }

  /**
   * Cluster mode: whichever comes first within the wait timeout, a socket
   * parked here, or a link to another node that took one of its own and
   * delivered `head` to it. Other nodes are asked again every retryInterval,
   * as a hidden server may park anywhere. Between two asks the client waits
   * here; the waiting limits are applied at its first wait only, so that a
   * client let in is not refused later in its wait. Its turn among
   * addresses is taken again at each wait, so it is kept only roughly.
   */
  async function waitAnywhere (remote: RemoteSource, id: string, head: Buffer, signal: AbortSignal, source: string): Promise<WaitOutcome | Remote | undefined> {
    const deadline = Date.now() + limits.waitTimeout
    for (let admitted = false; ; admitted = true) {
      if (lot.parkedFor(id) === 0) {
        // Another node that accepts and never answers must not hold the client past its wait timeout.
        const link = await untilDeadline(signal, deadline, async bounded => await remote.open(id, head, bounded))
        if (link === 'unavailable') return { unavailable: true }
        // A returned link already carries the request to a hidden server, so its answer is the client's even if the wait ended meanwhile.
        if (link !== 'none') return { link }
      }
      // Given up while other nodes were asked: a wait on a closed lot would only run out its time.
      if (signal.aborted) return undefined
      const left = deadline - Date.now()
      const found = await lot.wait(id, Math.min(left, remote.retryInterval), signal, source, admitted)
      if (found !== undefined || signal.aborted || left <= remote.retryInterval) return found
    }
  }

  async function matchAndSplice (ticket: Extract<Ticket, { kind: 'relay' }>, client: Socket, rest: Buffer, at: LineFields): Promise<void> {
    const watch = watchClient(client, limits.maxWaitBuffer)
    const sent = rest
    let found: WaitOutcome | Remote | undefined
    let halfClosedEarly = false
    let closedByAnswer = false
    try {
      const refused = await admission(client, ticket.id)
      if (refused !== undefined) {
        watch.stop()
        // After the answers to requests pipelined before it, as every refusal; none if one of them closed the connection.
        await refuseInTurn({ kind: 'refuse', outcome: refused[0], refusal: refused[1] }, client, at)
        return
      }
      // A FIN alone, seen while the checks above awaited (a Redis round trip in cluster mode), is a client that
      // half-closed after its request: a connection parked here takes it, as it would have a moment earlier.
      // Not one seen later: an earlier answer may take any time, and a client that must wait is given up on its FIN.
      halfClosedEarly = watch.gone
      // Earlier pipelined requests on this connection may still be answering; their bytes must go out first.
      await pendingResponse(client)
      // An earlier answer may have closed the connection (Connection: close): what follows it is never executed.
      closedByAnswer = closedByEarlierAnswer(client)
      if (!closedByAnswer && stillThere(client, watch, halfClosedEarly)) found = await waitForHidden(ticket.id, () => Buffer.concat([ticket.head, sent]), client, watch, halfClosedEarly)
    } finally {
      rest = Buffer.concat([rest, watch.stop()])
    }
    if (closedByAnswer) {
      dropBehindClose(client, at)
      return
    }
    if (!stillThere(client, watch, found !== undefined && 'socket' in found && halfClosedEarly)) {
      metrics.request('client_gone')
      deps.log.info({ ...at, outcome: 'client_gone' }, 'client left before its request was relayed')
      client.destroy()
      return
    }
    if (found !== undefined && 'link' in found) {
      // The other node delivered the head and what came with it; only what arrived since is left to send.
      await spliceTo(found.link, ticket, Buffer.alloc(0), client, rest.subarray(sent.length), at, 'forwarded', ticket.head.length + sent.length)
      return
    }
    if (found === undefined || 'full' in found || 'unavailable' in found) {
      const busy = { status: 503, retryAfter: limits.retryAfter }
      if (found !== undefined && 'unavailable' in found) refuseWith(client, 'cluster_unavailable', { ...busy, message: 'no hidden server is connected here, and the cluster cannot be reached' }, at)
      else if (found !== undefined) refuseWith(client, 'waiters_full', { ...busy, message: WAITERS_FULL[found.full] }, at)
      else if (deps.refusing() === 'shutting_down') refuseWith(client, 'shutting_down', { ...busy, message: 'shutting down' }, at)
      else refuseWith(client, 'no_hidden_server', { ...busy, message: 'no hidden server is connected for this ID' }, at)
      return
    }
    await spliceTo(found.socket, ticket, ticket.head, client, rest, at)
  }

  /** `delivered`: bytes another node already wrote to the hidden server (the head and what came with it), counted in toHidden. */
  async function spliceTo (hidden: Socket, { id, receivedAt }: Extract<Ticket, { kind: 'relay' }>, head: Buffer, client: Socket, rest: Buffer, at: LineFields, outcome: 'relayed' | 'forwarded' = 'relayed', delivered = 0): Promise<void> {
    let pair: SplicedPair
    try {
      // Node may have re-armed its keep-alive timer when an earlier response finished; the splice keeps its own.
      client.setTimeout(0)
      pair = Object.assign(splice(client, hidden, { idleTimeout: limits.spliceIdleTimeout, first: [head, rest], path: limits.splice, lingerTimeout: limits.lingerTimeout ?? DEFAULT_LINGER_MS, unanswered: { headOnly: at.method === 'HEAD' } }), { id })
      metrics.handoff(Number(process.hrtime.bigint() - receivedAt) / 1e9)
    } catch (err) {
      // Neither parked nor spliced: nobody else would ever close it.
      hidden.destroy()
      throw err
    }
    // connId names the parked connection, so these lines tie the mobile side's reqId to the hidden side's lines.
    const link = { connId: (hidden as { [kConnId]?: string })[kConnId], hiddenAddress: normaliseAddress(hidden.remoteAddress) }
    deps.log.debug({ ...at, ...link }, outcome === 'relayed' ? 'relaying' : 'relaying through another node')
    metrics.request(outcome)
    metrics.spliceOpened(pair)
    deps.splices.add(pair)
    const result = await untilOver(deps.splices, pair, client)
    metrics.spliceClosed(result.end, pair, result.durationMs / 1000)
    // The one info line of a relayed exchange, as a proxy's access log has one per session: two more lines (the park and the start) cost a few percent of a new rendezvous's CPU (docs/performance.md).
    deps.log.info({ ...at, ...link, outcome, end: result.end, toHidden: result.toHidden + delivered, toClient: result.toClient, durationMs: result.durationMs }, 'relay closed')
  }

  /**
   * Refuses once the answers to requests pipelined before this one are out,
   * as Node would have queued it: written at once, it would overtake them.
   * Behind an answer that closed the connection it is no request of its own.
   */
  async function refuseInTurn ({ outcome, refusal }: Extract<Ticket, { kind: 'refuse' }>, client: Socket, at: LineFields): Promise<void> {
    await pendingResponse(client)
    if (closedByEarlierAnswer(client)) {
      dropBehindClose(client, at)
      return
    }
    refuseWith(client, outcome, refusal, at)
  }

  /**
   * A request pipelined behind an answer that closed the connection, or said
   * it would, was never a request of its own: neither executed, nor
   * answered, nor counted. The connection closes as a refusal's does, what
   * the client still sends read and dropped, whether or not Node closes it
   * (it keeps one past the app's maxRequestsPerSocket).
   */
  function dropBehindClose (client: Socket, at: LineFields): void {
    deps.log.debug(at, 'pipelined request dropped: an earlier answer closed the connection')
    lingerClose(client, limits.lingerTimeout ?? DEFAULT_LINGER_MS)
  }

  function onClaimed (ticket: Ticket, req: IncomingMessage, socket: Socket, rest: Buffer): void {
    // reqId ties this request's lines together, and 'relay closed' names the parked connection's connId.
    // Fields rather than a child logger: a child per request cost more than the one line most requests log.
    const at: LineFields = { side: 'mobile', reqId: logId(), address: normaliseAddress(socket.remoteAddress), method: req.method, url: loggedUrl(req.url), id: ticket.kind === 'relay' ? ticket.id : undefined }
    socket.on('error', err => deps.log.debug({ ...at, err }, 'mobile-side socket error'))
    // Node may have left a keep-alive timer armed from an earlier response on this connection.
    socket.setTimeout(0)
    const failed = (err: unknown): void => {
      deps.log.error({ ...at, err }, 'relay failed')
      metrics.request('error')
      socket.destroy()
    }
    if (ticket.kind === 'refuse') {
      refuseInTurn(ticket, socket, at).catch(failed)
      return
    }
    deps.log.debug(at, 'waiting for a hidden server')
    matchAndSplice(ticket, socket, rest, at).catch(failed)
  }

  return { decide, onClaimed, endWaits: () => { ending.abort() } }
}
