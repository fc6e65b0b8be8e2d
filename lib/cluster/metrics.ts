import { Counter, Gauge, type Registry } from 'prom-client'
import { metric } from '../relay/metrics'

export type ForwardOutcome = 'forwarded' | 'none_parked' | 'unavailable' | 'peer_failed'
export type HandoverOutcome = 'handed_over' | 'declined' | 'none_parked' | 'unauthorized' | 'malformed' | 'incomplete' | 'version_mismatch' | 'closing' | 'tls_refused' | 'misdirected' | 'too_large' | 'links_full'

/** Cluster mode's outcomes, next to the relay's own rendezvous_ metrics. */
export interface ClusterMetrics {
  /** One rendezvous this node tried to serve from another node. */
  forward (outcome: ForwardOutcome): void
  /** One request from another node for a socket parked here. */
  handover (outcome: HandoverOutcome): void
  /** The node is closing: its reachability leaves rendezvous_cluster_redis_up. */
  close (): void
}

const noop = (): void => {}

// Nodes in one process that share a registry each add whether they reach Redis: the gauge is 1 only while every
// open one does, so that one node's outage is not hidden by another's, nor a closed node's state kept.
const reachability = new WeakMap<Registry, Set<() => boolean>>()

/** `reachable` is read at each scrape for rendezvous_cluster_redis_up. */
export function createClusterMetrics (registry: Registry | undefined, reachable: () => boolean): ClusterMetrics {
  if (registry === undefined) return { forward: noop, handover: noop, close: noop }
  let nodes = reachability.get(registry)
  if (nodes === undefined) reachability.set(registry, nodes = new Set())
  nodes.add(reachable)
  const registers = [registry]
  const forwards = metric(registry, 'rendezvous_cluster_forwards_total', () => new Counter({
    name: 'rendezvous_cluster_forwards_total', help: 'Rendezvous with nothing parked here that asked other nodes, by outcome', labelNames: ['outcome'], registers
  }))
  const handovers = metric(registry, 'rendezvous_cluster_handovers_total', () => new Counter({
    name: 'rendezvous_cluster_handovers_total', help: 'Requests from other nodes for a connection parked here, by outcome', labelNames: ['outcome'], registers
  }))
  metric(registry, 'rendezvous_cluster_redis_up', () => new Gauge({
    name: 'rendezvous_cluster_redis_up',
    help: '1 while Redis is reachable and the ID mirror is fresh',
    registers,
    collect () {
      const open = [...reachability.get(registry) ?? []]
      this.set(open.length > 0 && open.every(up => up()) ? 1 : 0)
    }
  }))
  return {
    forward: outcome => forwards.inc({ outcome }),
    handover: outcome => handovers.inc({ outcome }),
    close: () => { nodes.delete(reachable) }
  }
}
