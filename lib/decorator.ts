import type { AddressInfo } from 'node:net'
import type { Registry as PromRegistry } from 'prom-client'
import type { PeerTlsOptions } from './cluster/options'
import type { Registry } from './registry/registry'
import type { AnswerUnrouted } from './relay/challenge'
import type { IdCounts } from './relay/live-metrics'

export interface Stats {
  parked: number
  waiting: number
  spliced: number
}

/** What the plugin adds to the Fastify instance, as `fastify.rendezvous`. */
export interface Decorator {
  registry: Registry
  /** The prom-client registry holding the rendezvous_ metrics, unless metrics are off. */
  metrics: PromRegistry | undefined
  stats: () => Stats
  /** Parked connections for one ID. */
  parkedFor: (id: string) => number
  /** Live counts of every ID that has parked, waiting or spliced connections. */
  perId: () => Map<string, IdCounts>
  /** Where the admin listener is bound, once the app is ready; undefined when it is off. */
  adminAddress: () => AddressInfo | undefined
  /** False while cluster mode cannot reach Redis (the node is not ready); always true on a single node. */
  reachable: () => boolean
  /**
   * Answers a request no route handles as the plugin does: 401 with the
   * Digest challenge, or 404 (429 past `unknownIdFailures`) when its
   * credential names an unknown ID. For Fastify's `frameworkErrors`, whose
   * FST_ERR_BAD_URL (a path the router cannot decode) never reaches a hook;
   * the package's `frameworkErrors` does this.
   */
  answerUnrouted: AnswerUnrouted
  /** Cluster mode only: this node's name, where other nodes reach it (and where its peer listener is bound), and how to swap renewed peer TLS material in. */
  cluster: { nodeId: string, peerAddress: string | undefined, peerListening: string | undefined, setPeerTls: (tls: PeerTlsOptions) => void } | undefined
}

declare module 'fastify' {
  interface FastifyInstance {
    rendezvous: Decorator
  }
}
