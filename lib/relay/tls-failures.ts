import type { Server as HttpServer } from 'node:http'
import { Server as TlsServer, type TLSSocket } from 'node:tls'
import type { FastifyBaseLogger } from 'fastify'
import { normaliseAddress } from './auth-throttle'
import { logLimiter } from './log-limit'
import type { RendezvousMetrics, TlsRefusal } from './metrics'
import { isPlainHttp } from './plain-on-tls'

// What OpenSSL and Node say, by the reason counted. Plain HTTP on the TLS port is counted apart (plain-on-tls.ts).
const REASONS: Record<string, TlsRefusal> = {
  ERR_SSL_UNSUPPORTED_PROTOCOL: 'tls_version',
  ERR_SSL_NO_SHARED_CIPHER: 'tls_cipher',
  ERR_TLS_HANDSHAKE_TIMEOUT: 'tls_timeout'
}
// A peer that closed or reset before finishing its handshake (a port scan, a load balancer's TCP check) was refused nothing.
const PEER_LEFT = new Set(['ECONNRESET', 'EPIPE'])

/**
 * Counts the TLS handshakes a listener refuses, by reason, in
 * rendezvous_connections_refused_total: a client too old for TLS 1.2, or one
 * with no cipher in common, otherwise fails without a trace, and an operator
 * moving old clients over would see only silence. One info line a minute
 * per reason says so; the rest are debug lines.
 */
export function countFailedHandshakes (server: HttpServer, metrics: RendezvousMetrics, log: FastifyBaseLogger): () => void {
  if (!(server instanceof TlsServer)) return () => {}
  const infoNow = logLimiter(60_000)
  const onTlsClientError = (err: NodeJS.ErrnoException, socket: TLSSocket): void => {
    const code = err.code ?? ''
    if (isPlainHttp(code) || PEER_LEFT.has(code)) return
    const reason = REASONS[code] ?? 'tls_failed'
    metrics.connectionRefused(reason)
    const address = normaliseAddress(socket.remoteAddress)
    say(log[infoNow(reason) ? 'info' : 'debug'].bind(log), { address, reason, code })
  }
  // Ahead of the listeners that close the socket, which takes its address with it.
  server.prependListener('tlsClientError', onTlsClientError)
  return () => { server.removeListener('tlsClientError', onTlsClientError) }
}

// Each message written out, so that the docs can quote it as it is.
function say (write: (fields: object, msg: string) => void, fields: { reason: TlsRefusal, address?: string, code: string }): void {
  switch (fields.reason) {
    case 'tls_version': return write(fields, 'TLS handshake refused: the client offers only TLS versions this server does not accept (older than 1.2)')
    case 'tls_cipher': return write(fields, 'TLS handshake refused: no cipher in common with the client')
    case 'tls_timeout': return write(fields, 'TLS handshake not finished within handshakeTimeout: closed')
    default: return write(fields, 'TLS handshake failed: the client sent what is not a TLS handshake, or one OpenSSL refused')
  }
}
