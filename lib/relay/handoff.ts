import type { IncomingMessage, Server as HttpServer } from 'node:http'
import type { Socket } from 'node:net'
import { Server as TlsServer } from 'node:tls'
import { HandoffUnsupportedError } from '../errors'
import { kConnectionListener, kConnectListener, kTicket } from './symbols'

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

export type Decide<T> = (req: HeadersOnlyRequest) => T | undefined

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
}

type Claimed<T> = IncomingMessage & { [kTicket]?: { ticket: T, method: string } }

type ListenerServer = HttpServer & {
  [kConnectionListener]?: (socket: Socket) => void
  [kConnectListener]?: (req: IncomingMessage, socket: Socket, rest: Buffer) => void
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
      const ticket = decide(req)
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
    throw new HandoffUnsupportedError('the hand-off is already installed on this server')
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
  target[kConnectionListener] = onConnection
  target[kConnectListener] = onConnect
  return () => {
    server.removeListener(event, onConnection)
    server.removeListener('connect', onConnect)
    delete target[kConnectionListener]
    delete target[kConnectListener]
  }
}

/** Resolves once a response Node already started on this socket (an earlier pipelined request) has been written. */
export function pendingResponse (socket: Socket): Promise<void> {
  const res = (socket as Socket & { _httpMessage?: NodeJS.EventEmitter & { writableFinished?: boolean } })._httpMessage
  if (res === null || res === undefined || res.writableFinished === true) return Promise.resolve()
  return new Promise(resolve => {
    const done = (): void => {
      res.removeListener('finish', done)
      res.removeListener('close', done)
      resolve()
    }
    res.on('finish', done)
    res.on('close', done)
  })
}
