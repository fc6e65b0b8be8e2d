import { randomBytes } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyBaseLogger } from 'fastify'
import { refuse, type Refusal } from '../http/refusals'
import { pendingResponse, type HeadersOnlyRequest } from './handoff'
import { serializeHead } from '../http/head'
import { canonicalId } from '../registry/ids'
import type { RendezvousMetrics, RequestOutcome } from './metrics'
import type { ParkingLot } from './parking-lot'
import { readCredential } from '../http/authorization'
import type { Registry } from '../registry/registry'
import { splice, type Splice } from './splice'
import { kConnId, kUnknownId } from './symbols'

/** What the header callback decided about a request it took from the HTTP parser. */
export type Ticket =
  | { kind: 'refuse', outcome: RequestOutcome, refusal: Refusal }
  | { kind: 'relay', id: string, receivedAt: bigint }

/** A spliced pair and the ID it serves, so that one ID's pairs can be counted and cut. */
export type SplicedPair = Splice & { id: string }

export interface MobileSideDeps {
  registry: Pick<Registry, 'get'>
  lot: ParkingLot
  metrics: RendezvousMetrics
  log: FastifyBaseLogger
  limits: { waitTimeout: number, retryAfter: number, spliceIdleTimeout: number }
  /** Why new relays are refused right now (shutting down, under pressure), if they are. */
  refusing: () => RequestOutcome | undefined
  /** Spliced pairs, so close() can reach them. */
  splices: Set<SplicedPair>
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
    if (id !== undefined && deps.registry.get(id) !== undefined) return { kind: 'relay', id, receivedAt: process.hrtime.bigint() }
    // Not ours: the app may have a route that uses Basic auth of its own; the challenge hook answers 404 otherwise.
    ;(req as IncomingMessage & { [kUnknownId]?: boolean })[kUnknownId] = true
    return undefined
  }

  const refuseWith = (socket: Socket, outcome: RequestOutcome, refusal: Refusal, log: FastifyBaseLogger): void => {
    metrics.request(outcome)
    log.info({ outcome, status: refusal.status }, 'rendezvous request refused')
    refuse(socket, refusal)
  }

  async function matchAndSplice ({ id, receivedAt }: { id: string, receivedAt: bigint }, req: IncomingMessage, client: Socket, rest: Buffer, log: FastifyBaseLogger): Promise<void> {
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
    const found = await lot.wait(id, limits.waitTimeout, gone.signal)
    client.removeListener('close', onGone)
    metrics.waited(Number(process.hrtime.bigint() - started) / 1e9)
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
    hidden.write(serializeHead({ method: req.method ?? 'GET', url: req.url ?? '/', httpVersion: req.httpVersion, rawHeaders: req.rawHeaders }))
    if (rest.length > 0) hidden.write(rest)
    metrics.handoff(Number(process.hrtime.bigint() - receivedAt) / 1e9)
    metrics.request('relayed')
    log.info({ connId: (hidden as { [kConnId]?: string })[kConnId], hiddenAddress: hidden.remoteAddress }, 'rendezvous')
    metrics.spliceOpened()
    const pair = Object.assign(splice(client, hidden, { idleTimeout: limits.spliceIdleTimeout }), { id })
    deps.splices.add(pair)
    const result = await pair.done
    deps.splices.delete(pair)
    metrics.spliceClosed(result.end, result.toHidden, result.toClient, result.durationMs / 1000)
    log.info({ end: result.end, toHidden: result.toHidden, toClient: result.toClient, durationMs: result.durationMs }, 'relay closed')
  }

  function onClaimed (ticket: Ticket, req: IncomingMessage, socket: Socket, rest: Buffer): void {
    // reqId ties this request's lines to the hidden side's: the 'rendezvous' line names the parked connection's connId.
    const log = deps.log.child({ side: 'mobile', reqId: randomBytes(8).toString('hex'), address: socket.remoteAddress, method: req.method, url: req.url })
    socket.on('error', err => log.debug({ err }, 'mobile-side socket error'))
    // Node may have left a keep-alive timer armed from an earlier response on this connection.
    socket.setTimeout(0)
    if (ticket.kind === 'refuse') {
      refuseWith(socket, ticket.outcome, ticket.refusal, log)
      return
    }
    log.debug({ id: ticket.id }, 'waiting for a hidden server')
    matchAndSplice(ticket, req, socket, rest, log.child({ id: ticket.id })).catch(err => {
      log.error({ err }, 'relay failed')
      metrics.request('error')
      socket.destroy()
    })
  }

  return { decide, onClaimed }
}
