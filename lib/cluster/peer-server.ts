import { createServer as createTcpServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { createServer as createTlsServer, type TlsOptions } from 'node:tls'
import type { FastifyBaseLogger } from 'fastify'
import { ListenerError } from '../errors'
import { canonicalId } from '../registry/ids'
import type { ParkingLot } from '../relay/parking-lot'
import type { RendezvousMetrics } from '../relay/metrics'
import { splice, untilOver } from '../relay/splice'
import type { SplicedPair } from '../relay/mobile-side'
import type { SplicePath } from '../relay/native-addon'
import { kConnId } from '../relay/symbols'
import { DEFAULT_LINGER_MS, lingerClose } from '../http/linger'
import { logLimiter, SECRET_HINT, WARN_EVERY_MS } from './log-limit'
import type { ClusterMetrics } from './metrics'
import { connectionKey, gateConnections, PeerGate, type GateRefusal } from './peer-gate'
import { abandoned, onPeerTlsError, type Warn } from './peer-tls-refusal'
import type { PeerTokens } from './peer-token'
import { whyNotListening } from '../listen-own'
import { answerLine, GO_LINE, lineEnd, looksLikeTls, MAX_PAYLOAD, PEER_PROTOCOL, PEER_VERSION, parseRequestLine, peerVersionOf, readBytes, readFrame, VERSION_HINT, type PeerRequest } from './peer-wire'

export interface PeerServerDeps {
  nodeId: string
  tokens: PeerTokens
  lot: ParkingLot
  metrics: ClusterMetrics
  log: FastifyBaseLogger
  /** Spliced pairs, so close() can reach them, and the admin API can count and cut an ID's. */
  splices: Set<SplicedPair>
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

const PLAIN_HINT = ' (give every node --peer-tls-cert, --peer-tls-key and --peer-ca, or none)'
const CLOCK_HINT = ' (are the nodes\' clocks set?)'
const FLOOD_HINT = ' (another node sends one link per forwarded request and authenticates it at once: is something else reaching the peer port?)'

type Refusal = { status: number, reason: string, outcome: 'unauthorized' | 'malformed' | 'closing' | 'misdirected' | 'too_large', hint?: string }

/**
 * The listener other nodes reach: it reserves one of this node's parked
 * sockets for an authenticated asking node and, once that node takes it
 * (GO), writes the head it was given to the hidden server and splices the
 * socket with the link. A reservation the asking node does not take goes
 * back to the lot unused.
 */
export function createPeerServer (deps: PeerServerDeps): Server {
  const sockets = new Set<Socket>()
  const gate = new PeerGate()
  // A node with another cluster secret asks several times a second while its clients wait: one warning a minute per address.
  const warnNow = logLimiter(WARN_EVERY_MS)
  const track = (socket: Socket): void => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  }
  const onLink = (link: Socket): void => {
    track(link)
    link.on('error', err => deps.log.debug({ err }, 'peer link error'))
    const key = connectionKey(link)
    serve(link, deps, warnNow, () => gate.authenticated(key)).catch(err => {
      // Not one of the refusals above, which are counted and logged with a hint: a fault of this node.
      const level = warnNow(`failed ${(err as Error).message}`) ? 'warn' : 'debug'
      deps.log[level]({ err }, 'peer link failed')
      link.destroy()
    })
  }
  const server = deps.tls === undefined
    ? createTcpServer(onLink)
    // A dialler gives up after the same time (forwardTimeout), rather than Node's 120 s.
    : createTlsServer({ handshakeTimeout: deps.requestTimeout, ...deps.tls }, onLink).on('tlsClientError', onPeerTlsError(deps, warnNow))
  // Reading the address at accept keeps it on the raw socket, for a handshake that fails after the handle is gone.
  if (deps.tls !== undefined) server.on('connection', (raw: Socket) => { raw.remoteAddress?.toString() })
  // One line a minute in all: a flood comes from many addresses, and the counter has every refusal.
  const warnFull = logLimiter(WARN_EVERY_MS)
  gateConnections(server, raw => {
    const refused = gate.admit(raw)
    if (refused === undefined) return true
    // Lingering for its answer: a shutdown ends it with the links.
    track(raw)
    refuseAtAccept(raw, refused, deps, gate.waiting, warnFull)
    return false
  })
  linksOf.set(server, sockets)
  return server
}

/** A link past the limits on links still to authenticate: a plain one is told so in clear text, a TLS one is closed before its handshake. */
function refuseAtAccept (raw: Socket, refused: GateRefusal, deps: PeerServerDeps, waiting: number, warnFull: Warn): void {
  deps.metrics.handover('links_full')
  raw.on('error', () => {})
  const level = warnFull('links_full') ? 'warn' : 'debug'
  const which = refused.limit === 'address' ? 'from this address' : 'in all'
  deps.log[level]({ from: refused.address, outcome: 'links_full', waiting }, `refused a peer link: too many links ${which} have not authenticated yet${FLOOD_HINT}`)
  if (deps.tls !== undefined) raw.destroy()
  else lingerClose(raw, lingerMs(deps), Buffer.from(answerLine(503, 'too many links waiting to authenticate')))
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

async function serve (link: Socket, deps: PeerServerDeps, warnNow: Warn, authenticated: () => void): Promise<void> {
  const from = link.remoteAddress ?? 'unknown'
  const started = Date.now()
  const read = await readRequestLine(link, deps)
  if ('failed' in read) return refuseUnread(link, read, from, deps, warnNow)
  const { request } = read
  // Whatever can be refused from the line is, before its payload is read: a link that will not authenticate holds nothing.
  const early = beforePayload(request, deps)
  if (early !== undefined) return refuse(link, early, from, deps, warnNow, true)
  let payload: Buffer
  try {
    payload = await readBytes(link, request!.length, Math.max(1, started + deps.requestTimeout - Date.now()))
  } catch (err) {
    return refuseUnread(link, { failed: 'incomplete', error: (err as Error).message }, from, deps, warnNow)
  }
  const refusal = await check(request!, payload, deps, authenticated)
  if (refusal !== undefined) return refuse(link, refusal, from, deps, warnNow, false)
  const id = canonicalId(request!.id)!
  const hidden = link.destroyed ? undefined : deps.lot.take(id)
  // Read at the take: an ID removed (or a secret cut off) while the asking node decides must not get this socket back.
  const evictionsAtTake = deps.lot.evictions
  if (hidden === undefined) {
    deps.metrics.handover('none_parked')
    link.end(answerLine(404, 'nothing parked'))
    return
  }
  // The connId ties the asking node's 'relay closed' line to this node's lines about the parked connection.
  const connId = (hidden as { [kConnId]?: string })[kConnId]
  link.write(answerLine(200, connId === undefined ? 'ok' : `ok ${connId}`))
  // Reserved, not handed over: the asking node may have given up on this link (its client left, this node was
  // too slow), and a request must reach a hidden server at most once. Nothing is written to it before GO.
  if (!await confirmed(link, deps)) {
    deps.metrics.handover('declined')
    const back = !deps.isClosing() && deps.lot.putBack(id, hidden, evictionsAtTake)
    if (!back) hidden.destroy()
    deps.log.debug({ id, connId, from, parkedAgain: back }, 'another node did not take the connection it was offered')
    link.destroy()
    return
  }
  deps.metrics.handover('handed_over')
  deps.log.info({ id, connId }, 'handed a parked connection to another node')
  // Tagged with its ID as the relay's own pairs are: the admin API of this node, which holds the hidden side, counts and cuts it.
  const pair: SplicedPair = Object.assign(splice(link, hidden, { idleTimeout: deps.spliceIdleTimeout, first: [payload], path: deps.splice, lingerTimeout: deps.lingerTimeout }), { id })
  deps.relayMetrics.spliceOpened(pair)
  deps.splices.add(pair)
  const result = await untilOver(deps.splices, pair, link)
  deps.relayMetrics.spliceClosed(result.end, pair, result.durationMs / 1000)
}

type Read = { request: PeerRequest | undefined } | { failed: 'tls' | 'version' | 'incomplete', version?: string, error?: string }

/** The request line (undefined when it is not one of this version), or why there is none to answer. */
async function readRequestLine (link: Socket, deps: PeerServerDeps): Promise<Read> {
  let failed: 'tls' | undefined
  try {
    const frame = await readFrame(link, buffered => {
      // A dialler configured for TLS sends a ClientHello where this plain listener expects a line.
      if (deps.tls === undefined && looksLikeTls(buffered)) {
        failed = 'tls'
        return buffered.length
      }
      return lineEnd(buffered)
    }, deps.requestTimeout)
    if (failed !== undefined) return { failed }
    const line = frame.subarray(0, frame.length - 2).toString('latin1')
    const request = parseRequestLine(line)
    if (request !== undefined) return { request }
    const version = peerVersionOf(line)
    return version !== undefined && version !== PEER_VERSION ? { failed: 'version', version } : { request: undefined }
  } catch (err) {
    return { failed: 'incomplete', error: (err as Error).message }
  }
}

/** What the line alone shows: a request this node would refuse whatever its payload. */
function beforePayload (request: PeerRequest | undefined, deps: PeerServerDeps): Refusal | undefined {
  if (request === undefined) return { status: 400, reason: 'malformed request', outcome: 'malformed' }
  // A node of this version never declares more (the rest follows GO): reading it would only let anyone make this node hold it.
  if (request.length > MAX_PAYLOAD) return { status: 413, reason: `a request over ${MAX_PAYLOAD} bytes`, outcome: 'too_large' }
  if (canonicalId(request.id) === undefined) return { status: 400, reason: 'malformed request', outcome: 'malformed' }
  if (deps.isClosing()) return { status: 503, reason: 'shutting down', outcome: 'closing' }
  // The reason goes back on the wire too: the asking node, whose clock may be the one off, logs it.
  const implausible = deps.tokens.implausible(request.token)
  if (implausible !== undefined) return { status: 401, reason: implausible, outcome: 'unauthorized', hint: implausible.includes('clock') ? CLOCK_HINT : undefined }
  return undefined
}

/** The checks that need the payload, which the token covers; `authenticated` is called once the token is verified. */
async function check (request: PeerRequest, payload: Buffer, deps: PeerServerDeps, authenticated: () => void): Promise<Refusal | undefined> {
  if (deps.isClosing()) return { status: 503, reason: 'shutting down', outcome: 'closing' }
  if (!await deps.tokens.verify(request.target, canonicalId(request.id)!, payload, request.token)) return { status: 401, reason: 'authentication failed', outcome: 'unauthorized', hint: SECRET_HINT }
  authenticated()
  // Made with the cluster secret for another node: one that listened here before a restart, as the asker's lookup said.
  if (request.target !== deps.nodeId) return { status: 421, reason: 'misdirected: another node listens here now', outcome: 'misdirected' }
  return undefined
}

/**
 * Answers a refused request: counted, and a warning a minute per address
 * and cause for those that say something is wrong. `unread`: the payload
 * may still be coming, and closing over unread bytes would reset the link
 * before the answer is read.
 */
function refuse (link: Socket, refusal: Refusal, from: string, deps: PeerServerDeps, warnNow: Warn, unread: boolean): void {
  deps.metrics.handover(refusal.outcome)
  if (refusal.outcome === 'unauthorized' || refusal.outcome === 'malformed' || refusal.outcome === 'too_large') {
    const level = warnNow(`${from} ${refusal.outcome}`) ? 'warn' : 'debug'
    deps.log[level]({ from, outcome: refusal.outcome }, `refused a peer link: ${refusal.reason}${refusal.hint ?? ''}`)
  }
  const answer = answerLine(refusal.status, refusal.reason)
  if (unread) lingerClose(link, lingerMs(deps), Buffer.from(answer))
  else link.end(answer)
}

function lingerMs (deps: PeerServerDeps): number {
  return deps.lingerTimeout ?? DEFAULT_LINGER_MS
}

/** A link whose request could not be read: counted, and a warning a minute per address and cause, with what to check. */
function refuseUnread (link: Socket, read: Extract<Read, { failed: string }>, from: string, deps: PeerServerDeps, warnNow: Warn): void {
  if (read.failed === 'tls') {
    deps.metrics.handover('tls_refused')
    const level = warnNow(`${from} plain`) ? 'warn' : 'debug'
    deps.log[level]({ from, outcome: 'tls_refused', error: 'a TLS handshake on a plain TCP peer listener' }, `refused a peer link: the dialling node speaks TLS, this node's peer listener plain TCP${PLAIN_HINT}`)
    // In clear text: the dialler's TLS stack stops at once (wrong version number) instead of waiting out its timeout.
    link.end(answerLine(400, 'this peer listener speaks plain TCP, not TLS'))
    return
  }
  if (read.failed === 'version') {
    deps.metrics.handover('version_mismatch')
    const theirs = `RENDEZVOUS-PEER/${read.version!}`
    const level = warnNow(`${from} version ${theirs}`) ? 'warn' : 'debug'
    deps.log[level]({ from, outcome: 'version_mismatch', theirs, ours: PEER_PROTOCOL }, `refused a peer link: the dialling node speaks ${theirs}, this node ${PEER_PROTOCOL}${VERSION_HINT}`)
    // In the dialler's own framing, so that it can read the refusal.
    link.end(answerLine(505, `this node speaks ${PEER_PROTOCOL}`, theirs))
    return
  }
  abandoned(from, read.error, deps, warnNow)
  link.destroy()
}

/** Whether the asking node takes the connection reserved for it: GO within requestTimeout, not a close. */
async function confirmed (link: Socket, deps: PeerServerDeps): Promise<boolean> {
  if (link.destroyed) return false
  try {
    const line = await readFrame(link, lineEnd, deps.requestTimeout)
    return line.toString('latin1') === GO_LINE
  } catch {
    return false
  }
}

/** Starts the peer listener; a failure names it, as the admin and metrics listeners' do, so it is not taken for the public port's. */
export async function listenPeer (server: Server, host: string, port: number): Promise<AddressInfo> {
  await new Promise<void>((resolve, reject) => {
    const failed = (err: NodeJS.ErrnoException): void => {
      const at = host.includes(':') ? `[${host}]` : host
      reject(new ListenerError('peer', port === 0 ? at : `${at}:${port}`, whyNotListening(err)))
    }
    server.once('error', failed)
    server.listen({ host, port }, () => {
      server.removeListener('error', failed)
      resolve()
    })
  })
  return server.address() as AddressInfo
}
