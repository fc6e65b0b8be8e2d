import { X509Certificate } from 'node:crypto'
import { Counter, Gauge, type Registry as PromRegistry } from 'prom-client'
import { metric } from '../relay/metrics'

/** Which of serve's TLS listeners: the public one, or the cluster's peer link. */
export type TlsListener = 'public' | 'peer'

/** What a reload did: swapped new material in, found the files as they were, or kept the current material after a failed check. */
export type ReloadResult = 'reloaded' | 'unchanged' | 'failed'

export interface TlsMetrics {
  /** The certificate `listener` now presents, for its expiry. */
  serving: (listener: TlsListener, cert: Buffer) => void
  reloaded: (listener: TlsListener, result: ReloadResult) => void
}

const NONE: TlsMetrics = { serving: () => {}, reloaded: () => {} }

/**
 * The certificates serve presents, for alerts before one expires, and its
 * reloads, so that a renewal that failed its checks does not go unseen
 * until the old certificate runs out.
 */
export function tlsMetrics (registry: PromRegistry | undefined): TlsMetrics {
  if (registry === undefined) return NONE
  const registers = [registry]
  const expiry = metric(registry, 'rendezvous_tls_certificate_expiry_timestamp_seconds', () => new Gauge({
    name: 'rendezvous_tls_certificate_expiry_timestamp_seconds',
    help: 'When the certificate a TLS listener presents expires (its notAfter), in Unix seconds, by listener (public, peer)',
    labelNames: ['listener'],
    registers
  }))
  const reloads = metric(registry, 'rendezvous_tls_reloads_total', () => new Counter({
    name: 'rendezvous_tls_reloads_total',
    help: 'Reloads of a TLS listener\'s certificate (SIGHUP or a file change), by listener and result (reloaded, unchanged, failed)',
    labelNames: ['listener', 'result'],
    registers
  }))
  return {
    serving (listener, cert) {
      // validToDate is Node 22+; validTo parses the same on every supported major.
      expiry.set({ listener }, Date.parse(new X509Certificate(cert).validTo) / 1000)
    },
    reloaded (listener, result) { reloads.inc({ listener, result }) }
  }
}
