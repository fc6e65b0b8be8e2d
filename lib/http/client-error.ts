import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { FastifyBaseLogger } from 'fastify'
import { refuse, type Refusal } from './refusals'

// A socket is answered once: Node's parser reports an error again for each
// chunk that arrives after the first, while the answer is still on its way.
const answered = new WeakSet<Duplex>()
// Connections whose current request was answered before its body had arrived in full.
const answeredMidBody = new WeakSet<Duplex>()

/**
 * Marks a request whose answer was written before its body arrived in full
 * (a challenge to an upload, say); call it once that answer is written. A
 * client may then stop sending and close its side: the end of stream that
 * Node's parser reports is that, not a malformed request to answer a second
 * time.
 */
export function answeredBeforeBody (req: IncomingMessage): void {
  if (req.complete) return
  const socket = req.socket
  answeredMidBody.add(socket)
  req.once('end', () => answeredMidBody.delete(socket))
}

/**
 * Whether a `clientError` is the HTTP parser's: a head it could not parse or
 * that did not arrive in time. The event also carries every other socket
 * error (a write into a closed connection, a TCP timeout) and, on an HTTPS
 * server, every failed TLS handshake, none of which an HTTP answer can reach.
 */
export function isParserError (code: string | undefined): boolean {
  return code === 'ERR_HTTP_REQUEST_TIMEOUT' || code?.startsWith('HPE_') === true
}

/**
 * Whether the parser's error comes after the connection's last answer: bytes
 * after a request that closed the connection (RFC 9112 §9.6: Node closes it
 * after that answer), or an end of stream in the middle of a body that an
 * answer already refused (the client stopped its upload, as it may). A 400
 * would be read as the answer to a request nobody processed, and destroying
 * the socket could drop the answer still being flushed; so these are neither
 * answered nor counted as refusals.
 */
export function isAfterLastAnswer (code: string | undefined, socket: Duplex): boolean {
  return code === 'HPE_CLOSED_CONNECTION' || (socket.writableEnded && !answered.has(socket)) ||
    (code === 'HPE_INVALID_EOF_STATE' && answeredMidBody.has(socket))
}

/** The answer to a request Node's HTTP parser refused, by the error's code. */
export function parserRefusal (code: string | undefined): Refusal {
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return { status: 408, message: 'the request head did not arrive in time' }
  if (code === 'HPE_HEADER_OVERFLOW') return { status: 431, message: 'the request head is too large' }
  return { status: 400, message: 'malformed request' }
}

/**
 * Answers what Node's HTTP parser refuses before any route or hook sees it:
 * a malformed head, one too large, or one that did not arrive in time. The
 * answer has the form of every other refusal (docs/protocol.md): a status
 * line, a short body, `Connection: close`, then a close that flushes it (TLS
 * sends its close_notify). Fastify's default writes JSON without
 * `Connection: close` and destroys the socket at once. Pass it as Fastify's
 * `clientErrorHandler`; `rendezvous serve` does.
 */
export function clientErrorHandler (this: { log?: FastifyBaseLogger } | undefined, err: NodeJS.ErrnoException, socket: Duplex): void {
  triageClientError(err, socket, refusal => {
    // Never `{ err }`: Node's parse error carries the refused bytes (err.rawPacket), Authorization header and
    // CONNECT token included, and pino would write them out (docs/operations.md, Logs).
    const bytes = (err as { rawPacket?: Buffer }).rawPacket?.length
    this?.log?.debug({ code: err.code, reason: err.message, bytes, status: refusal.status }, 'answered a head the HTTP parser refused')
    refuse(socket, refusal)
  })
}

/**
 * Which of a server's `clientError`s get an answer, and the one each gets:
 * `answer` is called at most once per socket, for a head Node's parser
 * refused. A reset peer, bytes after the connection's last answer, and
 * socket errors no answer can reach get none.
 */
export function triageClientError (err: NodeJS.ErrnoException, socket: Duplex, answer: (refusal: Refusal) => void): void {
  // A reset peer has nothing left to read an answer.
  if (err.code === 'ECONNRESET' || socket.destroyed || answered.has(socket)) return
  if (isAfterLastAnswer(err.code, socket)) {
    // A client that gave up its upload after the answer and closed its side: close ours too (nothing else
    // would: Node's parser stops at the error), after that answer, which the socket already holds.
    if (err.code === 'HPE_INVALID_EOF_STATE' && socket.writable) socket.end()
    return
  }
  if (!isParserError(err.code)) {
    socket.destroy()
    return
  }
  answered.add(socket)
  answer(parserRefusal(err.code))
}
