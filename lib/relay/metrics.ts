import { Counter, Histogram, type Registry } from 'prom-client'
import type { ParkedExit } from './parking-lot'
import type { RelayedBytes } from './splice'
import { RendezvousOptionError } from '../errors'

export type ConnectOutcome =
  | 'parked' | 'malformed_target' | 'not_uuid' | 'missing_token' | 'early_data' | 'unauthorized'
  | 'throttled' | 'lot_full' | 'replay_cache_full' | 'replay_share_full' | 'store_unavailable' | 'throttle_unavailable' | 'verifier_unavailable' | 'busy' | 'timeout' | 'shutting_down' | 'error' | 'peer_left'

export type RequestOutcome =
  | 'relayed' | 'challenged' | 'bad_credential' | 'unknown_id' | 'no_hidden_server' | 'waiters_full'
  | 'shutting_down' | 'under_pressure' | 'client_gone' | 'error' | 'bad_head' | 'splices_full' | 'splices_share_full' | 'throttled' | 'forwarded' | 'cluster_unavailable' | 'throttle_unavailable'

/** Why a TLS listener refused a handshake (tls-failures.ts). */
export type TlsRefusal = 'tls_version' | 'tls_cipher' | 'tls_timeout' | 'tls_failed'

/** Why Node's HTTP parser refused a head, before the relay saw it. */
export type ParserRefusal = 'malformed_head' | 'head_too_large' | 'head_timeout' | 'plain_http'

// Internal enums are snake_case so that they serve as metric labels as they are.
export type ParkedExitOutcome = ParkedExit

/**
 * Every outcome the relay can have, counted in one place. What is open now
 * (parked, waiting, spliced) is not pushed here: the gauges read each plugin
 * instance's state at scrape time (live-metrics.ts), so that instances
 * sharing a registry add up.
 */
export interface RendezvousMetrics {
  connect (outcome: ConnectOutcome): void
  request (outcome: RequestOutcome): void
  parkedExit (outcome: ParkedExitOutcome): void
  /** A pair began to relay; its bytes are read live whenever the metrics are collected. */
  spliceOpened (flow: ByteFlow): void
  spliceClosed (end: string, flow: ByteFlow, seconds: number): void
  waited (seconds: number): void
  /** Head received from the mobile client to its first byte written to the hidden side. */
  handoff (seconds: number): void
  /** A connection closed before any request: at accept (the caps), or at its TLS handshake. */
  connectionRefused (reason: 'per_address_cap' | 'total_cap' | TlsRefusal): void
  /** A head Node's HTTP parser refused, answered before the relay saw it. */
  parserRefused (side: 'hidden' | 'mobile' | 'unknown', reason: ParserRefusal): void
}

/** Anything whose relayed bytes can be read at any moment, such as a Splice; `path` is the data path it took. */
export interface ByteFlow { bytes: () => RelayedBytes, path?: 'native' | 'js' }

const noop = (): void => {}
const NONE: RendezvousMetrics = {
  connect: noop, request: noop, parkedExit: noop, spliceOpened: noop, spliceClosed: noop, waited: noop, handoff: noop, connectionRefused: noop, parserRefused: noop
}

// Outcomes that are not refusals: everything else either side answers is one, counted by reason.
const NOT_REFUSED = new Set<string>(['parked', 'relayed', 'forwarded', 'challenged', 'client_gone'])

type MetricType = 'counter' | 'gauge' | 'histogram'

/**
 * Every metric the plugin (and serve) may register, with its type and
 * labels: what a metric of that name already on the registry must be to
 * be taken as one of ours.
 */
export const PLUGIN_METRICS: Readonly<Record<string, { type: MetricType, labelNames: readonly string[] }>> = {
  rendezvous_connect_total: { type: 'counter', labelNames: ['outcome'] },
  rendezvous_requests_total: { type: 'counter', labelNames: ['outcome'] },
  rendezvous_parked_exits_total: { type: 'counter', labelNames: ['reason'] },
  rendezvous_splices_total: { type: 'counter', labelNames: ['end'] },
  rendezvous_relayed_bytes_total: { type: 'counter', labelNames: ['direction'] },
  rendezvous_splice_paths_total: { type: 'counter', labelNames: ['path'] },
  rendezvous_splice_duration_seconds: { type: 'histogram', labelNames: [] },
  rendezvous_wait_seconds: { type: 'histogram', labelNames: [] },
  rendezvous_connections_refused_total: { type: 'counter', labelNames: ['reason'] },
  rendezvous_refusals_total: { type: 'counter', labelNames: ['side', 'reason'] },
  rendezvous_handoff_seconds: { type: 'histogram', labelNames: [] },
  rendezvous_parked_connections: { type: 'gauge', labelNames: [] },
  rendezvous_waiting_clients: { type: 'gauge', labelNames: [] },
  rendezvous_spliced_connections: { type: 'gauge', labelNames: [] },
  rendezvous_parked_ids: { type: 'gauge', labelNames: [] },
  rendezvous_id_parked: { type: 'gauge', labelNames: ['id'] },
  rendezvous_id_waiting: { type: 'gauge', labelNames: ['id'] },
  rendezvous_id_spliced: { type: 'gauge', labelNames: ['id'] },
  rendezvous_admin_requests_total: { type: 'counter', labelNames: ['action', 'status'] },
  rendezvous_cluster_forwards_total: { type: 'counter', labelNames: ['outcome'] },
  rendezvous_cluster_handovers_total: { type: 'counter', labelNames: ['outcome'] },
  rendezvous_cluster_redis_up: { type: 'gauge', labelNames: [] },
  rendezvous_tls_certificate_expiry_timestamp_seconds: { type: 'gauge', labelNames: ['listener'] },
  rendezvous_tls_reloads_total: { type: 'counter', labelNames: ['listener', 'result'] }
}

// Global, so that a second copy of the package in the process (another version, or its ESM and CJS builds side by side) knows ours too.
const MADE_BY_RENDEZVOUS = Symbol.for('fastify-rendezvous.metric')

interface SeenMetric { type?: unknown, labelNames?: unknown, [MADE_BY_RENDEZVOUS]?: true }

function described (type: unknown, labelNames: readonly unknown[]): string {
  const kind = typeof type === 'string' ? `a ${type}` : 'a metric'
  return labelNames.length === 0 ? `${kind} without labels` : `${kind} with label${labelNames.length > 1 ? 's' : ''} ${labelNames.join(', ')}`
}

/** Why a metric already on the registry under one of our names cannot be used as ours, if it cannot. */
function clash (name: string, found: SeenMetric): string | undefined {
  const ours = PLUGIN_METRICS[name]
  if (ours === undefined) return undefined
  const labelNames = Array.isArray(found.labelNames) ? found.labelNames as unknown[] : []
  const same = found.type === ours.type && labelNames.length === ours.labelNames.length && ours.labelNames.every((l, i) => labelNames[i] === l)
  if (same && found[MADE_BY_RENDEZVOUS] === true) return undefined
  const it = `metrics already holds ${name}, ${described(found.type, labelNames)}`
  const fix = 'remove it from that registry, or give the plugin a registry of its own'
  // Same shape but not ours: the app's own values would be mixed with the relay's (a gauge the app sets would show as the relay's).
  if (same) return `${it} that fastify-rendezvous did not make: the relay's values would be mixed with the app's; ${fix}`
  const from = found[MADE_BY_RENDEZVOUS] === true ? ' (made by another version of fastify-rendezvous)' : ''
  return `${it}${from}, where the relay's is ${described(ours.type, ours.labelNames)}: the relay would fail counting into it; ${fix}`
}

/**
 * Refuses a registry that holds a metric of one of our names that is not
 * ours, before anything is registered or opened: prom-client keeps the
 * first metric of a name, and counting into a foreign one throws at the
 * first CONNECT, or mixes the app's values with the relay's.
 */
export function checkMetricsRegistry (registry: Registry | false | undefined): void {
  if (registry === false || registry === undefined) return
  for (const name of Object.keys(PLUGIN_METRICS)) {
    const found = registry.getSingleMetric(name) as SeenMetric | undefined
    const problem = found === undefined ? undefined : clash(name, found)
    if (problem !== undefined) throw new RendezvousOptionError(problem)
  }
}

/**
 * The metric `name` on the registry, made by `make` the first time. prom-client
 * refuses a second metric of one name on a registry, so a second plugin
 * instance sharing the registry reuses the first's (and so their counts add
 * up); one the plugin did not make is refused.
 */
export function metric<T> (registry: Registry, name: string, make: () => T): T {
  const found = registry.getSingleMetric(name) as SeenMetric | undefined
  if (found !== undefined) {
    const problem = clash(name, found)
    if (problem !== undefined) throw new RendezvousOptionError(problem)
    return found as T
  }
  const made = make()
  Object.defineProperty(made, MADE_BY_RENDEZVOUS, { value: true })
  return made
}

export function createMetrics (registry: Registry | false | undefined): RendezvousMetrics {
  if (registry === false || registry === undefined) return NONE
  const registers = [registry]
  const connects = metric(registry, 'rendezvous_connect_total', () => new Counter({
    name: 'rendezvous_connect_total', help: 'CONNECTs from hidden servers, by outcome', labelNames: ['outcome'], registers
  }))
  const requests = metric(registry, 'rendezvous_requests_total', () => new Counter({
    name: 'rendezvous_requests_total', help: 'Requests from mobile clients that named a hidden server or were challenged, by outcome', labelNames: ['outcome'], registers
  }))
  const exits = metric(registry, 'rendezvous_parked_exits_total', () => new Counter({
    name: 'rendezvous_parked_exits_total', help: 'Parked connections that left without serving a client, by reason', labelNames: ['reason'], registers
  }))
  const splices = metric(registry, 'rendezvous_splices_total', () => new Counter({
    name: 'rendezvous_splices_total', help: 'Spliced pairs closed, by how they ended', labelNames: ['end'], registers
  }))
  const bytes = metric(registry, 'rendezvous_relayed_bytes_total', () => new Counter({
    name: 'rendezvous_relayed_bytes_total',
    help: 'Bytes relayed, the replayed request head included, by direction; open pairs count up to the last scrape',
    labelNames: ['direction'],
    registers,
    collect () { for (const flow of liveFlows(this).keys()) countBytes(this, flow) }
  }))
  const live = liveFlows(bytes)
  const paths = metric(registry, 'rendezvous_splice_paths_total', () => new Counter({
    name: 'rendezvous_splice_paths_total', help: 'Spliced pairs opened, by data path: native (splice(2) in the addon) or js', labelNames: ['path'], registers
  }))
  const spliceSeconds = metric(registry, 'rendezvous_splice_duration_seconds', () => new Histogram({
    name: 'rendezvous_splice_duration_seconds', help: 'Lifetime of spliced pairs', buckets: [0.01, 0.1, 1, 10, 60, 600, 3600], registers
  }))
  const waitSeconds = metric(registry, 'rendezvous_wait_seconds', () => new Histogram({
    name: 'rendezvous_wait_seconds', help: 'Time mobile clients waited for a parked connection', buckets: [0, 0.005, 0.05, 0.5, 1, 2.5, 5, 10, 30], registers
  }))
  const refusedConnections = metric(registry, 'rendezvous_connections_refused_total', () => new Counter({
    name: 'rendezvous_connections_refused_total', help: 'Connections closed before any request, at accept (the caps) or at a refused TLS handshake, by reason', labelNames: ['reason'], registers
  }))
  const refusals = metric(registry, 'rendezvous_refusals_total', () => new Counter({
    name: 'rendezvous_refusals_total', help: 'Refusals answered to hidden servers (side="hidden") and mobile clients (side="mobile"), by reason; side="unknown" for a head the HTTP parser refused whose method it did not see', labelNames: ['side', 'reason'], registers
  }))
  const handoffSeconds = metric(registry, 'rendezvous_handoff_seconds', () => new Histogram({
    name: 'rendezvous_handoff_seconds', help: 'From a mobile request\'s head received to its first byte written to the hidden server', buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30], registers
  }))
  return {
    connectionRefused: reason => refusedConnections.inc({ reason }),
    parserRefused: (side, reason) => refusals.inc({ side, reason }),
    connect: outcome => {
      connects.inc({ outcome })
      if (!NOT_REFUSED.has(outcome)) refusals.inc({ side: 'hidden', reason: outcome })
    },
    request: outcome => {
      requests.inc({ outcome })
      if (!NOT_REFUSED.has(outcome)) refusals.inc({ side: 'mobile', reason: outcome })
    },
    parkedExit: reason => exits.inc({ reason }),
    spliceOpened: flow => {
      if (flow.path !== undefined) paths.inc({ path: flow.path })
      live.set(flow, { toHidden: 0, toClient: 0 })
    },
    spliceClosed: (end, flow, seconds) => {
      splices.inc({ end })
      countBytes(bytes, flow)
      live.delete(flow)
      spliceSeconds.observe(seconds)
    },
    waited: seconds => waitSeconds.observe(seconds),
    handoff: seconds => handoffSeconds.observe(seconds)
  }
}

// Open pairs and what of their bytes the counter already has, per counter: a
// second plugin instance on the same registry shares the first's counter.
const flowsByCounter = new WeakMap<Counter, Map<ByteFlow, RelayedBytes>>()

function liveFlows (counter: Counter): Map<ByteFlow, RelayedBytes> {
  let flows = flowsByCounter.get(counter)
  if (flows === undefined) {
    flows = new Map()
    flowsByCounter.set(counter, flows)
  }
  return flows
}

/** Adds what `flow` relayed since it was last counted: nothing is done per chunk, only per scrape and per close. */
function countBytes (counter: Counter, flow: ByteFlow): void {
  const counted = liveFlows(counter).get(flow)
  if (counted === undefined) return
  const now = flow.bytes()
  if (now.toHidden > counted.toHidden) counter.inc({ direction: 'to_hidden' }, now.toHidden - counted.toHidden)
  if (now.toClient > counted.toClient) counter.inc({ direction: 'to_client' }, now.toClient - counted.toClient)
  counted.toHidden = now.toHidden
  counted.toClient = now.toClient
}
