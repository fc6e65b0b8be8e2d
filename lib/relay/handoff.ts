import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http'
import { Socket } from 'node:net'
import { Server as TlsServer, TLSSocket } from 'node:tls'
import { HandoffUnsupportedError, RendezvousOptionError } from '../errors'
import { lingerClose } from '../http/linger'
import { kConnectionListener, kConnectListener, kRequestListener, kTicket } from './symbols'

/*
 * The only module that touches Node's HTTP internals (see docs/plugin.md,
 * "How it takes a socket from Fastify"). It wraps each connection's
 * `parser.onIncoming`, which Node calls from llhttp's headers-complete
 * callback. When `decide` claims a request, the wrapper turns it into a
 * CONNECT and returns 2 (stop, treat as upgrade): Node then frees the
 * parser and emits 'connect' with exactly the bytes it read past the head,
 * so nothing after the head was parsed, re-chunked or answered by Node.
 */

/** What the parser callback sees of a request: Node's IncomingMessage before any listener got it, with llhttp's upgrade flag. */
export type HeadersOnlyRequest = IncomingMessage & { upgrade: boolean }

/** What the parser knows about a head that the request object does not show. */
export interface HeadFacts {
  /**
   * Node keeps at most `maxHeadersCount` fields in rawHeaders but still frames
   * the message by the ones it dropped, so such a head cannot be rebuilt.
   */
  headersTruncated: boolean
}

export type Decide<T> = (req: HeadersOnlyRequest, facts: HeadFacts) => T | undefined

export interface HandoffHandlers<T> {
  /** Runs in the headers-complete callback: synchronous, cheap, no I/O. */
  decide: Decide<T>
  /** A request `decide` claimed, with the raw socket and the bytes read past its head. */
  onClaimed: (ticket: T, req: IncomingMessage, socket: Socket, rest: Buffer) => void
  /** A genuine CONNECT request. */
  onConnect: (req: IncomingMessage, socket: Socket, rest: Buffer) => void
}

interface ParserLike {
  onIncoming: (req: HeadersOnlyRequest, keepAlive: boolean) => unknown
  /** Entries (names plus values) Node keeps in rawHeaders; 0 or less keeps all. */
  maxHeaderPairs?: number
}

type Claimed<T> = IncomingMessage & { [kTicket]?: { ticket: T, method: string } }

type ListenerServer = HttpServer & {
  [kConnectionListener]?: (socket: Socket) => void
  [kConnectListener]?: (req: IncomingMessage, socket: Socket, rest: Buffer) => void
  [kRequestListener]?: (req: IncomingMessage, res: ServerResponse) => void
}

/**
 * Responses Node has created on a connection and not yet finished writing.
 * Node queues pipelined responses in a private per-connection list and only
 * the first sits on `socket._httpMessage`; tracking them from the public
 * 'request' event sees the whole queue without reaching into that list.
 */
const unfinished = new WeakMap<Socket, Set<ServerResponse>>()

/**
 * Connections on which Node wrote an answer that said `Connection: close`.
 * Node ends the connection after most of them, but not after the answer
 * that reaches the app's `maxRequestsPerSocket`: it keeps the connection
 * and answers what follows with 503. Either way, the client was told that
 * nothing after that answer is executed.
 */
const toldClose = new WeakSet<Socket>()

// The head Node wrote, as the client read it: `Connection: close` may be the app's or Node's own.
const CLOSE_IN_HEAD = /\r\nconnection:[^\r\n]*\bclose\b/i

function trackResponse (req: IncomingMessage, res: ServerResponse): void {
  const socket = req.socket
  let set = unfinished.get(socket)
  if (set === undefined) {
    set = new Set()
    unfinished.set(socket, set)
  }
  const open = set
  open.add(res)
  // Added after Node's own 'finish' listener, which ends the connection after an answer that closes it: by now it has.
  const done = (): void => {
    open.delete(res)
    res.removeListener('finish', done)
    res.removeListener('close', done)
    const head = (res as ServerResponse & { _header?: unknown })._header
    if (typeof head === 'string' && CLOSE_IN_HEAD.test(head)) toldClose.add(socket)
  }
  res.on('finish', done)
  res.on('close', done)
}

/**
 * Whether an answer written before the claim closed the connection, or
 * told the client it would (see toldClose): a request pipelined behind it
 * must not be executed. Ask once pendingResponse() has resolved.
 */
export function closedByEarlierAnswer (socket: Socket): boolean {
  return socket.writableEnded || toldClose.has(socket)
}

function parserOf (socket: Socket): ParserLike {
  const parser = (socket as Socket & { parser?: ParserLike }).parser
  if (parser === null || parser === undefined || typeof parser.onIncoming !== 'function') {
    throw new HandoffUnsupportedError('socket.parser.onIncoming is missing')
  }
  return parser
}

function wrapParser<T> (socket: Socket, decide: Decide<T>): void {
  const parser = parserOf(socket)
  const original = parser.onIncoming
  parser.onIncoming = function onIncoming (this: unknown, req: HeadersOnlyRequest, keepAlive: boolean) {
    if (req.method !== 'CONNECT') {
      const max = parser.maxHeaderPairs ?? 0
      const ticket = decide(req, { headersTruncated: max > 0 && req.rawHeaders.length >= max })
      if (ticket !== undefined) {
        ;(req as Claimed<T>)[kTicket] = { ticket, method: req.method as string }
        req.method = 'CONNECT'
        req.upgrade = true
        return 2
      }
    }
    return original.call(this, req, keepAlive)
  }
}

/**
 * Installs the hand-off on a Node HTTP or HTTPS server. Throws
 * HandoffUnsupportedError at once when the server is of another kind.
 * Returns a function that removes it again.
 */
export function installHandoff<T> (server: HttpServer, handlers: HandoffHandlers<T>): () => void {
  const target = server as ListenerServer
  if (target[kConnectionListener] !== undefined) {
    throw new RendezvousOptionError('fastify-rendezvous is already registered on this server: register it once, on the root instance')
  }
  // An HTTPS server attaches its HTTP parser on 'secureConnection', after the handshake.
  const event = server instanceof TlsServer ? 'secureConnection' : 'connection'
  const onConnection = (socket: Socket): void => {
    try {
      wrapParser(socket, handlers.decide)
    } catch (err) {
      // Without the wrapper this connection could only be half-served; refuse it rather than corrupt a stream.
      socket.destroy(err as Error)
    }
  }
  const onConnect = (req: IncomingMessage, socket: Socket, rest: Buffer): void => {
    const claim = (req as Claimed<T>)[kTicket]
    if (claim === undefined) {
      handlers.onConnect(req, socket, rest)
      return
    }
    req.method = claim.method
    handlers.onClaimed(claim.ticket, req, socket, rest)
  }
  server.on(event, onConnection)
  server.on('connect', onConnect)
  server.on('request', trackResponse)
  target[kConnectionListener] = onConnection
  target[kConnectListener] = onConnect
  target[kRequestListener] = trackResponse
  return () => {
    server.removeListener(event, onConnection)
    server.removeListener('connect', onConnect)
    server.removeListener('request', trackResponse)
    delete target[kConnectionListener]
    delete target[kConnectListener]
    delete target[kRequestListener]
  }
}

/**
 * Resolves once every response Node created on this socket before the claim
 * (earlier pipelined requests, in order) has been written: bytes spliced in
 * before then would overtake them.
 */
export async function pendingResponse (socket: Socket): Promise<void> {
  const open = unfinished.get(socket)
  if (open === undefined || open.size === 0) return
  // Not res.writableFinished: it turns true before 'finish' is emitted, and so before Node, at that
  // event, ends a connection the answer closes. What is still in the set has yet to emit one of the two.
  const answered = Promise.all([...open].map(async res => await new Promise<void>(resolve => {
    res.once('finish', () => resolve())
    res.once('close', () => resolve())
  })))
  // A response queued behind one that closed the connection never gets the socket, and emits neither.
  if (socket.destroyed) return
  let onClose!: () => void
  const closed = new Promise<void>(resolve => { onClose = resolve })
  socket.once('close', onClose)
  try {
    await Promise.race([answered, closed])
  } finally {
    socket.removeListener('close', onClose)
  }
}

/**
 * Makes the close that Node's HTTP server does after an answer that ends the
 * connection (`Connection: close`) a lingering one (http/linger.ts). Node ends
 * the socket and destroys it as soon as the answer is flushed, so a client
 * still uploading a body gets a reset, which can take the unread answer
 * with it. Node makes that close through the socket's `destroySoon`. A
 * lingerMs of 0 keeps Node's close.
 */
export function lingerWhenClosed (socket: Socket, lingerMs: number): void {
  if (lingerMs <= 0) return
  socket.destroySoon = function destroySoon (this: Socket): void {
    lingerClose(this, lingerMs)
  }
}

// Node keeps the TLS handshake deadline under a private symbol (default 120 s); the public
// way in is a constructor option, which a plugin cannot reach once the server exists.
const HANDSHAKE_TIMEOUT = 'handshake-timeout'

/**
 * Sets how long a TLS server waits for a new connection's handshake, in ms.
 * Returns false when the server is not TLS or this Node keeps it elsewhere.
 */
export function setHandshakeTimeout (server: HttpServer, ms: number): boolean {
  if (!(server instanceof TlsServer)) return false
  const key = Object.getOwnPropertySymbols(server).find(s => s.description === HANDSHAKE_TIMEOUT)
  const holder = server as unknown as Record<symbol, unknown>
  if (key === undefined || typeof holder[key] !== 'number') return false
  holder[key] = ms
  return true
}

/**
 * Closes a TLS connection whose handshake failed once the server's other
 * listeners have seen it. Node reports a handshake that ran out of time
 * (handshakeTimeout) as a 'tlsClientError' and leaves the connection open:
 * an HTTPS server hands the error on as a 'clientError' and closes the
 * connection only when no listener takes that, so whether it closes depends
 * on the app's clientErrorHandler. A connection that never completed its
 * handshake can carry nothing. Node already closed those that failed for any
 * other reason.
 */
export function closeFailedHandshakes (server: HttpServer): () => void {
  if (!(server instanceof TlsServer)) return () => {}
  // Added after the HTTPS server's own listener, which runs the app's handler.
  const onTlsClientError = (_err: Error, socket: TLSSocket): void => {
    if (!socket.destroyed) socket.destroy()
  }
  server.on('tlsClientError', onTlsClientError)
  return () => { server.removeListener('tlsClientError', onTlsClientError) }
}

type EventsHolder = Socket & { _events?: Record<string | symbol, unknown> }

/**
 * Drops what Node's TLS and HTTP layers leave on a socket after its CONNECT
 * that a parked connection never uses: about 550 B of heap per parked TLS
 * connection (docs/performance.md). The TLS handshake timer, cleared but
 * still referenced, with its bound callback; and the listener table, which
 * the HTTP server's removals at the CONNECT turned into a slow dictionary.
 * It is rebuilt as the plain object Node's streams start with.
 */
export function shedConnectState (socket: Socket): void {
  if (!(socket instanceof TLSSocket)) return
  const holder = socket as unknown as Record<symbol, { _destroyed?: boolean } | null | undefined>
  const timer = Object.getOwnPropertySymbols(socket).find(s => s.description === 'timeout')
  if (timer !== undefined && holder[timer]?._destroyed === true) holder[timer] = null
  const events = (socket as EventsHolder)._events
  if (events === undefined) return
  const rebuilt: Record<string | symbol, unknown> = {}
  for (const key of Reflect.ownKeys(events)) if (events[key] !== undefined) rebuilt[key] = events[key]
  ;(socket as EventsHolder)._events = rebuilt
}

/**
 * The TCP socket under a server-side TLS socket whose handshake failed, for
 * an answer in plain text to a peer that spoke plain HTTP to a TLS port.
 * Node keeps it as `_parent` until the TLS socket is destroyed; undefined
 * where this Node keeps it elsewhere.
 */
export function plainSocketUnder (socket: TLSSocket): Socket | undefined {
  const parent = parentOf(socket)
  return parent !== undefined && !parent.destroyed && parent.writable ? parent : undefined
}

/**
 * The address of the peer of a server-side TLS socket, also after its
 * handshake failed and its handle was closed: the TCP socket under it
 * (`_parent`) kept the address if it was read while open.
 */
export function remoteAddressUnder (socket: TLSSocket): string | undefined {
  return socket.remoteAddress ?? parentOf(socket)?.remoteAddress
}

// Node keeps the TCP socket a server-side TLS socket wraps as `_parent`.
function parentOf (socket: TLSSocket): Socket | undefined {
  const parent = (socket as unknown as { _parent?: unknown })._parent
  return parent instanceof Socket ? parent : undefined
}

/**
 * Turns off Node's check that an HTTP/1.1 request has a Host (its
 * `requireHostHeader`), which answers in the server's own request callback,
 * before the app or the relay sees the request: the relay's header callback
 * makes it instead (mobile-decide.ts requireHost). Returns what gives it
 * back, or undefined where the server does not make it (an app that turned
 * it off, which takes such requests itself).
 */
export function takeHostCheck (server: HttpServer): (() => void) | undefined {
  const target = server as HttpServer & { requireHostHeader?: boolean }
  if (target.requireHostHeader !== true) return undefined
  target.requireHostHeader = false
  return () => { target.requireHostHeader = true }
}
