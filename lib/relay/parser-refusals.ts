import { METHODS, type Server as HttpServer } from 'node:http'
import type { Duplex } from 'node:stream'
import type { FastifyBaseLogger } from 'fastify'
import { clientErrorHandler, isAfterLastAnswer, isParserError, parserRefusal } from '../http/client-error'
import type { ParserRefusal, RendezvousMetrics } from './metrics'
import { normaliseAddress } from './auth-throttle'
import { kClientErrorListener } from './symbols'
import { refusalLevel, type RefusalLevel } from './log-limit'

type ClientErrorListener = (err: NodeJS.ErrnoException, socket: Duplex) => void
type Watched = HttpServer & { [kClientErrorListener]?: ClientErrorListener }

const KNOWN_METHODS: ReadonlySet<string> = new Set(METHODS)

const REASONS: Record<number, ParserRefusal> = { 408: 'head_timeout', 431: 'head_too_large' }

/**
 * The side, when the refused bytes say it: Node hands over only the last
 * chunk it read, which begins with the request line only when the head
 * came in one read. A head split over reads (or TLS records), or one that
 * timed out, is `unknown`, as is one that does not begin with a method Node knows.
 */
function sideOf (packet: Buffer | undefined): 'hidden' | 'mobile' | 'unknown' {
  const start = packet?.subarray(0, 24).toString('latin1') ?? ''
  const method = /^([A-Z-]+) \S/.exec(start)?.[1]
  // Only a method Node knows begins a request line: a head split inside its method (`CONN`, then `ECT uuid:...`) is no request's start.
  if (method === undefined || !KNOWN_METHODS.has(method)) return 'unknown'
  return method === 'CONNECT' ? 'hidden' : 'mobile'
}

/**
 * Counts and logs what Node's HTTP parser refuses before the hand-off or any
 * route sees it (a malformed head, one too large, one too slow), as every
 * other refusal is: whoever answers it (clientErrorHandler, or Fastify's
 * default), it is a refusal of this server. The side is read off the
 * method, the first bytes of what was refused (sideOf); nothing else of them.
 */
export function watchParserRefusals (server: HttpServer, metrics: RendezvousMetrics, log: FastifyBaseLogger, keyOf: (address: string) => string = normaliseAddress): () => void {
  const target = server as Watched
  // A flood of bad heads from one source: its first lines per minute at info, for each side, the rest at debug.
  const levels = new Map<string, RefusalLevel>()
  const levelOf = (side: string): RefusalLevel => levels.get(side) ?? levels.set(side, refusalLevel(keyOf, { log, side })).get(side)!
  // Node reports an error again for each chunk that arrives after the first.
  const seen = new WeakSet<Duplex>()
  const count = (err: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Duplex): void => {
    if (!isParserError(err.code) || isAfterLastAnswer(err.code, socket) || seen.has(socket)) return
    seen.add(socket)
    // A client that closed in the middle of its request gave up (a phone that lost its network, most often): no
    // refusal of a head it never finished. Over TLS Node does not even report it; over plain TCP it does.
    if (err.code === 'HPE_INVALID_EOF_STATE') {
      log.debug({ address: normaliseAddress((socket as { remoteAddress?: string }).remoteAddress) }, 'a client closed its connection in the middle of a request')
      return
    }
    const { status } = parserRefusal(err.code)
    const outcome = REASONS[status] ?? 'malformed_head'
    const side = sideOf(err.rawPacket)
    metrics.parserRefused(side, outcome)
    const address = normaliseAddress((socket as { remoteAddress?: string }).remoteAddress)
    log[levelOf(side)(outcome, address)]({ side, address, outcome, status, code: err.code }, 'request refused by the HTTP parser')
  }
  const onClientError = (err: NodeJS.ErrnoException, socket: Duplex): void => {
    count(err, socket)
    // With any listener Node neither answers nor closes; alone, this one must do both, or the peer would hang.
    if (server.listenerCount('clientError') === 1) clientErrorHandler.call({ log }, err, socket)
  }
  // First: the app's handler (Fastify's default among them) may destroy the socket, and its address with it.
  server.prependListener('clientError', onClientError)
  target[kClientErrorListener] = onClientError
  return () => {
    server.removeListener('clientError', onClientError)
    delete target[kClientErrorListener]
  }
}

/**
 * Gives a server that Fastify made for a second address of `localhost` the
 * answers of its main server, where Fastify puts the app's
 * clientErrorHandler, and on that one only. The watcher above is a
 * 'clientError' listener, and with any listener Node neither answers a
 * refused head nor closes the connection, nor one whose TLS handshake failed
 * or timed out: without this, such a peer would hang on the second address.
 * The main server's listeners are read at each error, so that one the app
 * adds later answers on both; with none, the package's handler answers, as
 * it does there.
 */
export function answerAsMain (extra: HttpServer, main: HttpServer, log: FastifyBaseLogger): () => void {
  const onClientError = (err: NodeJS.ErrnoException, socket: Duplex): void => {
    const watcher = (main as Watched)[kClientErrorListener]
    const handlers = main.listeners('clientError').filter(listener => listener !== watcher) as ClientErrorListener[]
    if (handlers.length === 0) {
      clientErrorHandler.call({ log }, err, socket)
      return
    }
    for (const handler of handlers) Reflect.apply(handler, main, [err, socket])
  }
  extra.on('clientError', onClientError)
  return () => { extra.removeListener('clientError', onClientError) }
}
