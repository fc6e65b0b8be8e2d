import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyBaseLogger } from 'fastify'
import { refuse, type Refusal } from '../http/refusals'
import { pendingResponse, type HeadersOnlyRequest } from './handoff'
import { serializeHead } from '../http/head'
import { canonicalId } from '../registry/ids'
import type { RendezvousMetrics, RequestOutcome } from './metrics'
import type { ParkingLot, WaitOutcome } from './parking-lot'
import { readCredential } from '../http/authorization'
import type { Registry } from '../registry/registry'
import type { RemoteSource } from './remote-source'
import { splice, type Splice } from './splice'
import { kUnknownId } from './symbols'

/** What the header callback decided about a request it took from the HTTP parser. */
export type Ticket =
  | { kind: 'refuse', outcome: RequestOutcome, refusal: Refusal }
  | { kind: 'relay', id: string }

/** What another node gave: a link to a hidden server there, or word that the cluster cannot be asked. */
type Remote = { link: Socket } | { unavailable: true }

export interface MobileSideDeps {
  registry: Pick<Registry, 'get' | 'stale'>
  /** Cluster mode: hidden servers parked on other nodes. */
  remote?: RemoteSource
  lot: ParkingLot
  metrics: RendezvousMetrics
  log: FastifyBaseLogger
  limits: { waitTimeout: number, retryAfter: number, spliceIdleTimeout: number }
  /** Why new relays are refused right now (shutting down, under pressure), if they are. */
  refusing: () => RequestOutcome | undefined
  /** Spliced pairs, so close() can reach them. */
  splices: Set<Splice>
}

export interface MobileSide {
  decide: (req: HeadersOnlyRequest) => Ticket | undefined
  onClaimed: (ticket: Ticket, req: IncomingMessage, socket: Socket, rest: Buffer) => void
}

export function createMobileSide (deps: MobileSideDeps): MobileSide {
  const { lot, metrics, limits } = deps

  // Runs inside Node's header callback: synchronous, and it touches only the headers.
  function decide (req: HeadersOnlyRequest): Ticket | undefined {
    const credential = readCredential({ rawHeaders: req.rawHeaders, url: req.url ?? '/', upgrade: req.upgrade })
    if (credential.kind === 'none') return undefined
    if (credential.kind === 'invalid') {
      return { kind: 'refuse', outcome: 'bad_credential', refusal: { status: 400, message: credential.reason } }
    }
    const id = canonicalId(credential.username)
    if (id !== undefined && deps.registry.get(id) !== undefined) return { kind: 'relay', id }
    // A registry that lost its source cannot tell an unknown ID from one added meanwhile: never a wrong 404.
    if (id !== undefined && deps.registry.stale?.() === true) {
      return { kind: 'refuse', outcome: 'cluster_unavailable', refusal: { status: 503, retryAfter: limits.retryAfter, message: 'the ID registry cannot be reached' } }
    }
    // Not ours: the app may have a route that uses Basic auth of its own; the challenge hook answers 404 otherwise.
    ;(req as IncomingMessage & { [kUnknownId]?: boolean })[kUnknownId] = true
    return undefined
  }

  const refuseWith = (socket: Socket, outcome: RequestOutcome, refusal: Refusal, log: FastifyBaseLogger): void => {
    metrics.request(outcome)
    log.info({ outcome, status: refusal.status }, 'rendezvous request refused')
    refuse(socket, refusal)
  }

  async function matchAndSplice (id: string, req: IncomingMessage, client: Socket, rest: Buffer, log: FastifyBaseLogger): Promise<void> {
    const busy = { status: 503, retryAfter: limits.retryAfter }
    const refusing = deps.refusing()
    if (refusing !== undefined) {
      refuseWith(client, refusing, { ...busy, message: refusing === 'shutting_down' ? 'shutting down' : 'server under pressure' }, log)
      return
    }
    // An earlier pipelined request on this connection may still be answering; its bytes must go out first.
    await pendingResponse(client)
    const gone = new AbortController()
    const onGone = (): void => gone.abort()
    client.once('close', onGone)
    const started = process.hrtime.bigint()
    const found = deps.remote === undefined
      ? await lot.wait(id, limits.waitTimeout, gone.signal)
      : await waitAnywhere(deps.remote, id, Buffer.concat([headOf(req), rest]), gone.signal)
    client.removeListener('close', onGone)
    metrics.waited(Number(process.hrtime.bigint() - started) / 1e9)
    if (found !== undefined && ('link' in found || 'unavailable' in found)) {
      await forwarded(found, client, log)
      return
    }
    if (found !== undefined && 'socket' in found && client.destroyed) {
      // The client left at the very moment a connection was found: the connection is still clean, so it goes back.
      if (lot.hasRoom(id)) lot.park(id, found.socket)
      else found.socket.destroy()
    }
    if (client.destroyed) {
      metrics.request('client_gone')
      return
    }
    if (found === undefined) {
      const refusing = deps.refusing()
      if (refusing === 'shutting_down') refuseWith(client, refusing, { ...busy, message: 'shutting down' }, log)
      else refuseWith(client, 'no_hidden_server', { ...busy, message: 'no hidden server is connected for this ID' }, log)
      return
    }
    if ('full' in found) {
      refuseWith(client, 'waiters_full', { ...busy, message: 'too many clients waiting for this ID' }, log)
      return
    }
    const hidden = found.socket
    hidden.write(headOf(req))
    if (rest.length > 0) hidden.write(rest)
    metrics.request('relayed')
    await spliceWith(client, hidden, log)
  }

  /**
   * Cluster mode: whichever comes first within the wait timeout, a socket
   * parked here, or a link to another node that took one of its own and
   * delivered `head` to it. Other nodes are asked again every retryInterval,
   * as a hidden server may park anywhere.
   */
  async function waitAnywhere (remote: RemoteSource, id: string, head: Buffer, signal: AbortSignal): Promise<WaitOutcome | Remote | undefined> {
    const deadline = Date.now() + limits.waitTimeout
    for (;;) {
      if (lot.parkedFor(id) === 0) {
        const link = await remote.open(id, head, signal)
        if (link === 'unavailable') return { unavailable: true }
        if (link !== 'none') return { link }
      }
      const left = deadline - Date.now()
      const found = await lot.wait(id, Math.min(left, remote.retryInterval), signal)
      if (found !== undefined || signal.aborted || left <= remote.retryInterval) return found
    }
  }

  async function forwarded (found: Remote, client: Socket, log: FastifyBaseLogger): Promise<void> {
    if ('unavailable' in found) {
      refuseWith(client, 'cluster_unavailable', { status: 503, retryAfter: limits.retryAfter, message: 'no hidden server is connected here, and the cluster cannot be reached' }, log)
    } else if (client.destroyed) {
      // The head already went to the hidden server; the link cannot be given back.
      found.link.destroy()
      metrics.request('client_gone')
    } else {
      metrics.request('forwarded')
      await spliceWith(client, found.link, log)
    }
  }

  async function spliceWith (client: Socket, hidden: Socket, log: FastifyBaseLogger): Promise<void> {
    metrics.spliceOpened()
    const pair = splice(client, hidden, { idleTimeout: limits.spliceIdleTimeout })
    deps.splices.add(pair)
    const result = await pair.done
    deps.splices.delete(pair)
    metrics.spliceClosed(result.end, result.toHidden, result.toClient, result.durationMs / 1000)
    log.info({ end: result.end, toHidden: result.toHidden, toClient: result.toClient, durationMs: result.durationMs }, 'relay closed')
  }

  const headOf = (req: IncomingMessage): Buffer =>
    serializeHead({ method: req.method ?? 'GET', url: req.url ?? '/', httpVersion: req.httpVersion, rawHeaders: req.rawHeaders })

  function onClaimed (ticket: Ticket, req: IncomingMessage, socket: Socket, rest: Buffer): void {
    const log = deps.log.child({ side: 'mobile', address: socket.remoteAddress, method: req.method, url: req.url })
    socket.on('error', err => log.debug({ err }, 'mobile-side socket error'))
    // Node may have left a keep-alive timer armed from an earlier response on this connection.
    socket.setTimeout(0)
    if (ticket.kind === 'refuse') {
      refuseWith(socket, ticket.outcome, ticket.refusal, log)
      return
    }
    log.info({ id: ticket.id }, 'relaying')
    matchAndSplice(ticket.id, req, socket, rest, log.child({ id: ticket.id })).catch(err => {
      log.error({ err }, 'relay failed')
      metrics.request('error')
      socket.destroy()
    })
  }

  return { decide, onClaimed }
}
