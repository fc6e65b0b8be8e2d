import { STATUS_CODES, type IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { FastifyBaseLogger } from 'fastify'
import { triageClientError } from '../http/client-error'
import { DEFAULT_LINGER_MS, lingerClose } from '../http/linger'
import type { AdminCount } from './metrics'
import { errorWord } from './refusal'

// The page loads only its own script and talks only to its own origin.
const CSP = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/** The headers of every answer of the admin listener, Fastify's and those written on the socket alike. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'content-security-policy': CSP
}

/** A whole answer `{"error","message"}` for a socket Fastify never saw, ending with Connection: close. */
export function jsonAnswerBytes (status: number, message: string, extra: Record<string, string> = {}): Buffer {
  const body = Buffer.from(JSON.stringify({ error: errorWord(status), message }), 'utf8')
  const fields: Record<string, string> = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(body.length),
    connection: 'close',
    ...SECURITY_HEADERS,
    ...extra
  }
  const head = Object.entries(fields).map(([name, value]) => `${name}: ${value}\r\n`).join('')
  return Buffer.concat([Buffer.from(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n${head}\r\n`, 'latin1'), body])
}

function answer (socket: Duplex, log: FastifyBaseLogger, status: number, message: string, why: string, extra?: Record<string, string>): void {
  log.info({ status, error: errorWord(status), message: why }, 'admin request refused')
  lingerClose(socket, DEFAULT_LINGER_MS, jsonAnswerBytes(status, message, extra))
}

const MALFORMED = 'malformed request: the admin listener speaks HTTP/1.1, with GET, POST and DELETE'
const RELAYS_NOTHING = "the admin listener relays nothing: agents and clients CONNECT to the relay's public port"

/**
 * Node hands CONNECT to the server's 'connect' event, never to Fastify, and
 * closes the socket without a word when nothing listens: a misdirected agent
 * would see only a reset. This answers 405 like every other refusal, counted.
 */
export function answerConnect (log: FastifyBaseLogger, count: AdminCount): (request: IncomingMessage, socket: Duplex) => void {
  return (_request, socket) => {
    count('CONNECT', undefined, 405)
    answer(socket, log, 405, RELAYS_NOTHING, 'CONNECT', { allow: 'GET, POST, DELETE' })
  }
}

/**
 * The admin listener's `clientErrorHandler`: what Node's HTTP parser refuses
 * (an unknown method, HTTP/2's preface, a head too large or too slow) gets
 * the API's own form, JSON with the usual headers, and is counted; the
 * relay's handler answers such heads in plain text. The same cases are left
 * unanswered: a reset peer, bytes after the connection's last answer, and
 * socket errors no answer can reach.
 */
export function adminClientErrors (log: FastifyBaseLogger, count: AdminCount): (err: NodeJS.ErrnoException, socket: Duplex) => void {
  return (err, socket) => {
    triageClientError(err, socket, refusal => {
      const message = refusal.status === 400 ? MALFORMED : refusal.message ?? MALFORMED
      count('', undefined, refusal.status)
      // Never the error itself: it carries the refused bytes (err.rawPacket), the bearer token among them.
      answer(socket, log, refusal.status, message, `${err.code ?? 'parse error'}: ${message}`)
    })
  }
}
