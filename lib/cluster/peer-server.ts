import { createServer as createTcpServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { createServer as createTlsServer, type TlsOptions } from 'node:tls'
import type { FastifyBaseLogger } from 'fastify'
import { canonicalId } from '../registry/ids'
import type { ParkingLot } from '../relay/parking-lot'
import type { RendezvousMetrics } from '../relay/metrics'
import { splice, untilOver, type Splice } from '../relay/splice'
import type { SplicePath } from '../relay/native-addon'
import { remoteAddressUnder } from '../relay/handoff'
import { kConnId } from '../relay/symbols'
import { logLimiter, SECRET_HINT, WARN_EVERY_MS } from './log-limit'
import type { ClusterMetrics } from './metrics'
import type { PeerTokens } from './peer-token'
import { answerLine, lineEnd, parseRequestLine, readFrame, type PeerRequest } from './peer-wire'

export interface PeerServerDeps {
  nodeId: string
  tokens: PeerTokens
  lot: ParkingLot
  metrics: ClusterMetrics
  log: FastifyBaseLogger
  /** Spliced pairs, so close() can reach them. */
  splices: Set<Splice>
  spliceIdleTimeout: number
  /** The plugin's `lingerTimeout`: the link gets a lingering close when the hidden server fails. */
  lingerTimeout?: number
  splice?: SplicePath
  /** Time an asking node has to send its whole request, in ms. */
  requestTimeout: number
  /** The relay's metrics: a handed-over pair is a spliced pair of this node too. */
  relayMetrics: RendezvousMetrics
  isClosing: () => boolean
  tls?: TlsOptions
}

const CERT_HINT = ' (does --peer-ca sign every node\'s --peer-tls-cert?)'
const HANDSHAKE_HINT = ' (does the dialling node speak TLS on the peer link, and does its --peer-ca sign this node\'s certificate?)'

type Refusal = { status: number, reason: string, outcome: 'unauthorized' | 'malformed' | 'none_parked' | 'closing' }

/**
 * The listener other nodes reach: it hands one of this node's parked
 * sockets to an authenticated asking node, writes the head it was given to
 * the hidden server, and splices the socket with the link.
 */
export function createPeerServer (deps: PeerServerDeps): Server {
  const sockets = new Set<Socket>()
  // A node with another cluster secret asks several times a second while its clients wait: one warning a minute per address.
  const warnNow = logLimiter(WARN_EVERY_MS)
  const onLink = (link: Socket): void => {
    sockets.add(link)
    link.once('close', () => sockets.delete(link))
    link.on('error', err => deps.log.debug({ err }, 'peer link error'))
    serve(link, deps, warnNow).catch(err => {
      deps.log.warn({ err }, 'peer link failed')
      link.destroy()
    })
  }
  const server = deps.tls === undefined
    ? createTcpServer(onLink)
    // A dialler gives up after the same time (forwardTimeout), rather than Node's 120 s.
    : createTlsServer({ handshakeTimeout: deps.requestTimeout, ...deps.tls }, onLink).on('tlsClientError', (err: NodeJS.ErrnoException, socket) => {
      // No handshake, or no certificate the listener trusts: the request never reaches check().
      // Node's tls.Server leaves a socket whose handshake timed out open: closing it is ours to do.
      // The handle may be closed by now; the raw socket under it kept the address read at accept (below).
      const from = remoteAddressUnder(socket) ?? 'unknown'
      socket.destroy()
      deps.metrics.handover('tls_refused')
      // Node closes a link whose certificate fails verification with a bare 'socket hang up'; the cause is in authorizationError.
      const cause: unknown = socket.authorizationError
      const refusedCert = cause instanceof Error ? cause.message : typeof cause === 'string' ? cause : undefined
      const error = refusedCert === undefined ? err.message : `the dialling node's certificate: ${refusedCert}`
      // A node whose certificate this CA did not sign retries several times a second: one warning a minute per address and cause.
      const level = warnNow(`${from} tls ${error}`) ? 'warn' : 'debug'
      deps.log[level]({ from, outcome: 'tls_refused', error }, `refused a peer link: TLS handshake failed${refusedCert === undefined ? HANDSHAKE_HINT : CERT_HINT}`)
    })
  // Reading the address at accept keeps it on the raw socket, for a handshake that fails after the handle is gone.
  if (deps.tls !== undefined) server.on('connection', (raw: Socket) => { raw.remoteAddress?.toString() })
  linksOf.set(server, sockets)
  return server
}

// Each peer server's open links, for closePeerServer().
const linksOf = new WeakMap<Server, Set<Socket>>()

/**
 * Stops the listener and ends every link still open. By now the relay has
 * aborted its splices, forwarded ones included; what is left is a link
 * mid-request, and server.close() alone would wait for it without end.
 */
export async function closePeerServer (server: Server): Promise<void> {
  const closed = new Promise(resolve => server.close(resolve))
  for (const link of linksOf.get(server) ?? []) link.destroy()
  await closed
}

async function serve (link: Socket, deps: PeerServerDeps, warnNow: (key: string) => boolean): Promise<void> {
  let request: PeerRequest | undefined
  const frame = await readFrame(link, buffered => {
    const end = lineEnd(buffered)
    if (end === undefined) return undefined
    request ??= parseRequestLine(buffered.subarray(0, end - 2).toString('latin1'))
    if (request === undefined) return end
    return buffered.length >= end + request.length ? end + request.length : undefined
  }, deps.requestTimeout)
  const payload = request === undefined ? Buffer.alloc(0) : frame.subarray(frame.length - request.length)
  const refusal = await check(request, payload, deps)
  if (refusal !== undefined) {
    deps.metrics.handover(refusal.outcome)
    if (refusal.outcome === 'unauthorized' || refusal.outcome === 'malformed') {
      const from = link.remoteAddress ?? 'unknown'
      const level = warnNow(`${from} ${refusal.outcome}`) ? 'warn' : 'debug'
      deps.log[level]({ from, outcome: refusal.outcome }, `refused a peer link: ${refusal.reason}${refusal.outcome === 'unauthorized' ? SECRET_HINT : ''}`)
    }
    link.end(answerLine(refusal.status, refusal.reason))
    return
  }
  const id = canonicalId(request!.id)!
  const hidden = deps.lot.take(id)
  if (hidden === undefined) {
    deps.metrics.handover('none_parked')
    link.end(answerLine(404, 'nothing parked'))
    return
  }
  // The connId ties the asking node's 'relay closed' line to this node's lines about the parked connection.
  const connId = (hidden as { [kConnId]?: string })[kConnId]
  link.write(answerLine(200, connId === undefined ? 'ok' : `ok ${connId}`))
  deps.metrics.handover('handed_over')
  deps.log.info({ id, connId }, 'handed a parked connection to another node')
  const pair = splice(link, hidden, { idleTimeout: deps.spliceIdleTimeout, first: [payload], path: deps.splice, lingerTimeout: deps.lingerTimeout })
  deps.relayMetrics.spliceOpened(pair)
  deps.splices.add(pair)
  const result = await untilOver(deps.splices, pair, link)
  deps.relayMetrics.spliceClosed(result.end, pair, result.durationMs / 1000)
}

async function check (request: PeerRequest | undefined, payload: Buffer, deps: PeerServerDeps): Promise<Refusal | undefined> {
  if (request === undefined || canonicalId(request.id) === undefined) return { status: 400, reason: 'malformed request', outcome: 'malformed' }
  if (deps.isClosing()) return { status: 503, reason: 'shutting down', outcome: 'closing' }
  const id = canonicalId(request.id)!
  const ok = request.target === deps.nodeId && await deps.tokens.verify(deps.nodeId, id, payload, request.token)
  if (!ok) return { status: 401, reason: 'authentication failed', outcome: 'unauthorized' }
  return undefined
}

export async function listenPeer (server: Server, host: string, port: number): Promise<AddressInfo> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen({ host, port }, () => {
      server.removeListener('error', reject)
      resolve()
    })
  })
  return server.address() as AddressInfo
}
