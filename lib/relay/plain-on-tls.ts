import type { Server as HttpServer } from 'node:http'
import { Server as TlsServer, type TLSSocket } from 'node:tls'
import type { FastifyBaseLogger } from 'fastify'
import { refusalBytes } from '../http/refusals'
import { plainSocketUnder } from './handoff'
import { normaliseAddress } from './auth-throttle'
import type { RendezvousMetrics } from './metrics'
import { refusalLevel } from './log-limit'

// OpenSSL names the two mistakes it can tell from any other bad handshake:
// an HTTP request line (GET, POST, HEAD, PUT) and a CONNECT, the hidden
// side's, where a TLS record should have begun.
const SIDES: Record<string, 'hidden' | 'mobile'> = { ERR_SSL_HTTPS_PROXY_REQUEST: 'hidden', ERR_SSL_HTTP_REQUEST: 'mobile' }

/** Whether a TLS client error is plain HTTP where a handshake should be: answered and counted here, not as a failed handshake. */
export function isPlainHttp (code: string | undefined): boolean {
  return SIDES[code ?? ''] !== undefined
}

/** The body of the 400 a peer gets for plain HTTP on a TLS port; the agent recognises it. */
export const PLAIN_ON_TLS = 'this port speaks TLS: use https://'

const ANSWER = refusalBytes({ status: 400, message: PLAIN_ON_TLS })

/**
 * Answers a peer that spoke plain HTTP to a TLS listener in plain HTTP, as
 * nginx does, instead of closing without a word: a hidden server or a
 * client configured with http:// for an https:// relay then learns why.
 * Counted and logged as a refusal. The TLS socket closes the connection
 * once this returns, so the answer gets no lingering close; it is small
 * enough to leave in one write.
 */
export function answerPlainHttpOnTls (server: HttpServer, metrics: RendezvousMetrics, log: FastifyBaseLogger, keyOf: (address: string) => string = normaliseAddress): () => void {
  if (!(server instanceof TlsServer)) return () => {}
  const level = refusalLevel(keyOf, { log })
  const onTlsClientError = (err: NodeJS.ErrnoException, socket: TLSSocket): void => {
    const side = SIDES[err.code ?? '']
    if (side === undefined) return
    const plain = plainSocketUnder(socket)
    metrics.parserRefused(side, 'plain_http')
    const address = normaliseAddress(socket.remoteAddress)
    log[level('plain_http', address)]({ side, address, outcome: 'plain_http', status: 400, answered: plain !== undefined }, 'plain HTTP refused on the TLS port')
    plain?.end(ANSWER)
  }
  // Ahead of the HTTPS server's own listener, which hands the error to the
  // app's clientErrorHandler, and that may destroy the socket.
  server.prependListener('tlsClientError', onTlsClientError)
  return () => { server.removeListener('tlsClientError', onTlsClientError) }
}
