import type { TLSSocket } from 'node:tls'
import type { FastifyBaseLogger } from 'fastify'
import { remoteAddressUnder } from '../relay/handoff'
import { acceptedSocket } from '../relay/socket-fd'
import type { ClusterMetrics } from './metrics'

/** Whether a line about `key` is written at warn now (once a minute per key). */
export type Warn = (key: string) => boolean

export interface RefusalDeps {
  metrics: ClusterMetrics
  log: FastifyBaseLogger
  isClosing: () => boolean
}

// How a TLS handshake ends when the dialler closed, or sent nothing, before it was done.
const ENDED_EARLY = new Set(['ECONNRESET', 'ERR_TLS_HANDSHAKE_TIMEOUT'])
// A dialler that refuses this node's certificate just closes; so does one that gave up on a paused node.
const LEFT_HINT = ' (the dialling node left mid-handshake: does its --peer-ca sign this node\'s certificate, or did it give up waiting for this node?)'
const CERT_HINT = ' (does --peer-ca sign every node\'s --peer-tls-cert?)'
const HANDSHAKE_HINT = ' (does the dialling node speak TLS on the peer link, and does its --peer-ca sign this node\'s certificate?)'

/**
 * The mutual-TLS peer listener's answer to a handshake that failed: the
 * request never reached the checks. Node's tls.Server leaves a socket whose
 * handshake timed out open, so closing it is ours to do.
 */
export function onPeerTlsError (deps: RefusalDeps, warnNow: Warn): (err: NodeJS.ErrnoException, socket: TLSSocket) => void {
  return (err, socket) => {
    // The handle may be closed by now; the raw socket under it kept the address read at accept.
    const from = remoteAddressUnder(socket) ?? 'unknown'
    socket.destroy()
    // Node closes a link whose certificate fails verification with a bare 'socket hang up'; the cause is in authorizationError.
    const cause: unknown = socket.authorizationError
    const refusedCert = cause instanceof Error ? cause.message : typeof cause === 'string' ? cause : undefined
    const endedEarly = refusedCert === undefined && ENDED_EARLY.has(err.code ?? '')
    // Not a byte of TLS: a TCP health check or a port scan, not a certificate problem.
    if (endedEarly && acceptedSocket(socket).bytesRead === 0) {
      abandoned(from, err.message, deps, warnNow)
      return
    }
    deps.metrics.handover('tls_refused')
    const error = refusedCert === undefined ? err.message : `the dialling node's certificate: ${refusedCert}`
    // A node whose certificate this CA did not sign retries several times a second: one warning a minute per address and cause.
    const level = warnNow(`${from} tls ${error}`) ? 'warn' : 'debug'
    deps.log[level]({ from, outcome: 'tls_refused', error }, `refused a peer link: TLS handshake failed${refusedCert !== undefined ? CERT_HINT : endedEarly ? LEFT_HINT : HANDSHAKE_HINT}`)
  }
}

/**
 * A link that closed or went silent before a whole request, TLS handshake
 * included: a TCP health check, a port scan, or a dialler that gave up on a
 * node paused longer than its timeout. Nothing here says the certificates
 * are wrong, so none of it is counted as tls_refused.
 */
export function abandoned (from: string, error: string | undefined, deps: RefusalDeps, warnNow: Warn): void {
  deps.metrics.handover('incomplete')
  // A shutdown ends the links it finds mid-request: nothing to warn about.
  const level = !deps.isClosing() && warnNow(`${from} ${error ?? ''}`) ? 'warn' : 'debug'
  deps.log[level]({ from, outcome: 'incomplete', error }, 'refused a peer link: no whole request')
}
