import type { Registry } from './registry/registry'
import type { ReplayCache } from './stores/replay-cache'
import { DEFAULT_MAX_ENTRIES } from './stores/memory-replay-cache'
import type { ThrottleStore } from './stores/throttle-store'
import type { Registry as PromRegistry } from 'prom-client'
import { RendezvousOptionError } from './errors'
import { shown } from './option-value'
import { limit, limitsObject, share, throttleLimits } from './option-limits'
import { boolean, clusterOption, objectWith, routePaths } from './option-checks'
import { DEFAULT_LINGER_MS } from './http/linger'
import { resolveAdminOptions, type AdminOptions, type ResolvedAdminOptions } from './admin/options'
import { ROOM_WAIT_MS, type AuthFailureLimits, type ResolvedAuthFailureLimits } from './relay/auth-throttle'
import type { TokenVerdict, TotpMode, VerifyToken } from './tokens/verdict'
import type { ClusterOptions } from './cluster/options'
import { isRedisClient, type RedisSource } from './cluster/redis-connection'
import { defaultSplicePath, SPLICE_PATHS, type SplicePath } from './relay/native-addon'

export type { AuthFailureLimits, TokenVerdict, TotpMode, VerifyToken, AdminOptions, SplicePath }

/*
 * Units: every duration option is in milliseconds and its name carries no
 * unit. The exceptions are wire values, in seconds because the protocol puts
 * seconds on the wire: `tokenSkew` (v1 tokens carry unix seconds) and
 * `retryAfter` (the Retry-After header).
 */
export interface RendezvousOptions {
  /** Where IDs and secrets live. Defaults to a file registry in `dataDir`, or an in-memory one. */
  registry?: Registry
  /** Directory of the default file registry, and of the default replay cache's journal (docs/security.md). */
  dataDir?: string
  /** Replaces the default verifier (docs/protocol.md, Tokens). */
  verifyToken?: VerifyToken
  /** TOTP compatibility mode. Default 'strict'. */
  totp?: TotpMode
  /** Allowed clock difference for v1 tokens, in seconds. Default 120. */
  tokenSkew?: number
  replayCache?: ReplayCache
  /** Entries of the default in-memory replay cache. Default 500000: about 4,000 new parked connections a second at the default skew. */
  replayCacheSize?: number
  /**
   * Live tokens one ID may hold in the replay cache before its share binds:
   * past it, that ID's new tokens get 503 while less than this much room
   * would be left. 0 turns the share off. Default a quarter of
   * replayCacheSize. Only for a cache with `room()` (the default ones).
   */
  replayCachePerId?: number
  throttleStore?: ThrottleStore
  authFailures?: AuthFailureLimits
  /** How long a mobile client waits for a parked connection, in ms. Default 10000. */
  waitTimeout?: number
  /** Seconds put in Retry-After on 503 answers; a 429 carries what is left of its cool-off instead. Default 5. */
  retryAfter?: number
  /** Parked connections per ID. Default 64. */
  maxParkedPerId?: number
  /** Parked connections in all. Default 10000. */
  maxParked?: number
  /** Mobile clients waiting per ID; 0: none waits, a client that finds nothing parked gets 503 at once. Default 256. */
  maxWaitersPerId?: number
  /** Mobile clients waiting in all; 0: none waits, a client that finds nothing parked gets 503 at once. Default 10000. */
  maxWaiters?: number
  /**
   * One client address's share (an IPv6 client's subnet, see ipv6Subnet)
   * of an ID's waiting places: an address that has this many clients
   * waiting for an ID gets 503 while no more than this many of the ID's
   * places are left, so that one address cannot take them all. 0: no share.
   * Default: a quarter of maxWaitersPerId.
   */
  maxWaitersPerAddress?: number
  /** CONNECTs being authenticated at once: a positive integer. Default 1000. */
  maxPendingConnects?: number
  /** Time a CONNECT may take to authenticate, in ms. Default 10000. */
  connectTimeout?: number
  /** TCP keep-alive initial delay on parked sockets, in ms. Default 30000. */
  keepAliveInitialDelay?: number
  /** Closes spliced pairs idle this long, in ms. 0 (default) never does. */
  spliceIdleTimeout?: number
  /**
   * How long a connection being closed with an answer goes on reading, and
   * dropping, what its peer still sends, in ms: a refused client or hidden
   * server, and a client whose hidden server reset after answering. Closing
   * with the peer's bytes unread would reset it, and an uploading client
   * could lose the answer before reading it. 0 closes at once. Default 2000.
   */
  lingerTimeout?: number
  /**
   * The data path of spliced pairs (docs/performance.md): 'native' moves
   * plain-TCP pairs with splice(2) in the optional addon and fails at startup
   * when it cannot be loaded; 'js' always uses Node streams; 'auto' uses the
   * addon where it is loaded and both sockets are plain TCP. TLS pairs always
   * take the JavaScript path. Default: RENDEZVOUS_SPLICE, else 'auto'.
   */
  splice?: SplicePath
  /** Open connections from one client address (clients, idle connections, handshakes, CONNECTs not yet accepted); beyond it new ones are closed at once. A hidden server's connection leaves the count once parked. 0 for no cap. Default 256. */
  maxConnectionsPerAddress?: number
  /**
   * Open connections in all that are not a hidden server's parked or spliced
   * ones (the set `maxConnectionsPerAddress` counts, whatever the address);
   * beyond it new ones are closed at once. It counts the app's own
   * connections too, so it is off by default here; `serve` sets 20000. 0 for no cap. Default 0.
   */
  maxConnections?: number
  /**
   * How much of an IPv6 client's address its per-address limits count by
   * (maxConnectionsPerAddress, authFailures, unknownIdFailures): one host
   * holds a whole /64 and can send from any address in it. 128 counts each
   * address apart. Default 64.
   */
  ipv6Subnet?: number
  /** Spliced pairs open at once; beyond it mobile clients get 503. 0 for no cap. Default 10000. */
  maxSpliced?: number
  /**
   * Spliced pairs of one ID before its share binds: past it, that ID's
   * clients get 503 while less than this much room would be left under
   * maxSpliced. 0 turns the share off. Default a quarter of maxSpliced (0 when maxSpliced is 0).
   */
  maxSplicedPerId?: number
  /** Time a new TLS connection gets to finish its handshake, in ms (Node's own default is 120000). Default 10000. */
  handshakeTimeout?: number
  /** Bytes read from a waiting mobile client (its body) while it waits for a parked connection; past it reading pauses. Default 65536. */
  maxWaitBuffer?: number
  /** Unknown-ID answers per client address before that address is cooled off with 429 (ID enumeration). */
  unknownIdFailures?: UnknownIdLimits
  /** On close, how long spliced pairs get to finish before they are destroyed, in ms. Default 0. */
  closeGracePeriod?: number
  /** The Digest realm. Default 'rendezvous'. */
  realm?: string
  /** prom-client registry for the rendezvous_ metrics, or false for none. Default: a registry of the plugin's own. */
  metrics?: PromRegistry | false
  /** Series per ID (label `id`) on the live gauges. Default false: label cardinality stays bounded. */
  metricsPerId?: boolean
  /** Path of the liveness route (`{"status":"ok"}`), or false (default) for none. */
  healthPath?: string | false
  /** Path of the readiness route (200 or 503 with reasons), or false (default) for none. */
  readyPath?: string | false
  /** The admin listener (JSON API and page) on an address of its own. Off by default. */
  admin?: AdminOptions | false
  /**
   * Cluster mode: a Redis URL, or an ioredis client (Redis, Sentinel or
   * Cluster, such as @fastify/redis provides). IDs, the replay cache and the
   * failed-auth counters then live in Redis, and nodes forward to each other.
   */
  redis?: RedisSource
  /** How this node joins the cluster; required with `redis`. */
  cluster?: ClusterOptions
}

export interface ResolvedOptions {
  registry?: Registry
  dataDir?: string
  verifyToken?: VerifyToken
  totp: TotpMode
  tokenSkew: number
  replayCache?: ReplayCache
  replayCacheSize: number
  replayCachePerId: number
  throttleStore?: ThrottleStore
  authFailures: ResolvedAuthFailureLimits
  waitTimeout: number
  retryAfter: number
  maxParkedPerId: number
  maxParked: number
  maxWaitersPerId: number
  maxWaiters: number
  maxWaitersPerAddress: number
  maxPendingConnects: number
  connectTimeout: number
  keepAliveInitialDelay: number
  spliceIdleTimeout: number
  lingerTimeout: number
  splice: SplicePath
  maxConnectionsPerAddress: number
  maxConnections: number
  ipv6Subnet: number
  maxSpliced: number
  maxSplicedPerId: number
  handshakeTimeout: number
  maxWaitBuffer: number
  unknownIdFailures: Required<UnknownIdLimits>
  closeGracePeriod: number
  realm: string
  metrics?: PromRegistry | false
  metricsPerId: boolean
  healthPath: string | false
  readyPath: string | false
  admin?: ResolvedAdminOptions
  redis?: RedisSource
  cluster?: ClusterOptions
}

const NUMBERS = {
  tokenSkew: 120,
  replayCacheSize: DEFAULT_MAX_ENTRIES,
  waitTimeout: 10_000,
  retryAfter: 5,
  maxParkedPerId: 64,
  maxParked: 10_000,
  maxWaitersPerId: 256,
  maxWaiters: 10_000,
  maxPendingConnects: 1000,
  connectTimeout: 10_000,
  keepAliveInitialDelay: 30_000,
  spliceIdleTimeout: 0,
  lingerTimeout: DEFAULT_LINGER_MS,
  maxConnectionsPerAddress: 256,
  maxConnections: 0,
  ipv6Subnet: 64,
  maxSpliced: 10_000,
  handshakeTimeout: 10_000,
  maxWaitBuffer: 65_536,
  closeGracePeriod: 0
} as const

const UNKNOWN_ID_FAILURES: Required<UnknownIdLimits> = { perAddress: 100, window: 60_000, coolOff: 60_000 }

export interface UnknownIdLimits {
  /** Unknown-ID answers per client address within `window`; 0 turns the throttle off. Default 100. */
  perAddress?: number
  /** How long an unknown-ID answer counts, in ms. Default 60000. */
  window?: number
  /** How long a tripped address gets 429, in ms. Default 60000. */
  coolOff?: number
}

const AUTH_FAILURES: ResolvedAuthFailureLimits = { perPair: 10, perAddress: 100, perIdTotp: 30, window: 60_000, coolOff: 60_000, roomWait: ROOM_WAIT_MS }

// Old names that still work; each one warns once per process.
const DEPRECATED_AUTH_FAILURES = { windowMs: 'window', coolOffMs: 'coolOff' } as const
const warned = new Set<string>()

function authFailureLimits (given: AuthFailureLimits | undefined): ResolvedAuthFailureLimits {
  const limits = { ...limitsObject('authFailures', given, AUTH_FAILURES, Object.keys(DEPRECATED_AUTH_FAILURES)) }
  for (const [old, name] of Object.entries(DEPRECATED_AUTH_FAILURES) as Array<[keyof typeof DEPRECATED_AUTH_FAILURES, 'window' | 'coolOff']>) {
    if (limits[old] === undefined) continue
    if (!warned.has(old)) {
      warned.add(old)
      process.emitWarning(`authFailures.${old} is deprecated: use authFailures.${name}, also in ms`, { type: 'DeprecationWarning', code: 'FST_RENDEZVOUS_DEP_AUTH_FAILURES' })
    }
    limits[name] ??= limits[old]
  }
  return throttleLimits('authFailures', limits, AUTH_FAILURES, ['perPair', 'perAddress', 'perIdTotp'])
}

export function resolveOptions (opts: RendezvousOptions = {}): ResolvedOptions {
  const numbers = {} as Record<keyof typeof NUMBERS, number>
  for (const [name, fallback] of Object.entries(NUMBERS) as Array<[keyof typeof NUMBERS, number]>) {
    numbers[name] = limit(name, opts[name], fallback)
  }
  const authFailures = authFailureLimits(opts.authFailures)
  const unknownIdFailures = throttleLimits('unknownIdFailures', limitsObject('unknownIdFailures', opts.unknownIdFailures, UNKNOWN_ID_FAILURES), UNKNOWN_ID_FAILURES, ['perAddress'])
  objectWith('registry', opts.registry, ['ready', 'get', 'list', 'add', 'remove', 'onRemove'])
  objectWith('replayCache', opts.replayCache, ['remember'])
  objectWith('throttleStore', opts.throttleStore, ['hit', 'block', 'blockedFor'])
  if (opts.metrics !== false) objectWith('metrics', opts.metrics, ['getSingleMetric', 'registerMetric', 'metrics'], 'a prom-client Registry or false')
  const totp = opts.totp ?? 'strict'
  if (!['strict', 'reuse', 'off'].includes(totp)) {
    throw new RendezvousOptionError(`totp must be 'strict', 'reuse' or 'off', got ${String(totp)}`)
  }
  if (opts.verifyToken !== undefined && typeof opts.verifyToken !== 'function') {
    throw new RendezvousOptionError('verifyToken must be a function')
  }
  if (opts.redis !== undefined && typeof opts.redis !== 'string' && !isRedisClient(opts.redis)) {
    throw new RendezvousOptionError('redis must be a URL or an ioredis client')
  }
  const splice = opts.splice ?? envSplicePath()
  if (!SPLICE_PATHS.includes(splice)) {
    throw new RendezvousOptionError(`splice must be 'auto', 'native' or 'js', got ${String(splice)}`)
  }
  const realm: unknown = opts.realm ?? 'rendezvous'
  if (typeof realm !== 'string' || !/^[\x20-\x7e]+$/.test(realm) || /["\\]/.test(realm)) {
    throw new RendezvousOptionError(`realm must be a string of printable ASCII without quotes or backslashes, got ${shown(realm)}`)
  }
  return {
    ...numbers,
    replayCachePerId: share('replayCachePerId', opts.replayCachePerId, numbers.replayCacheSize, 'replayCacheSize'),
    maxSplicedPerId: share('maxSplicedPerId', opts.maxSplicedPerId, numbers.maxSpliced, 'maxSpliced'),
    maxWaitersPerAddress: share('maxWaitersPerAddress', opts.maxWaitersPerAddress, numbers.maxWaitersPerId, 'maxWaitersPerId'),
    registry: opts.registry,
    dataDir: opts.dataDir,
    verifyToken: opts.verifyToken,
    totp,
    splice,
    replayCache: opts.replayCache,
    throttleStore: opts.throttleStore,
    authFailures,
    unknownIdFailures,
    realm,
    metrics: opts.metrics,
    metricsPerId: boolean('metricsPerId', opts.metricsPerId),
    ...routePaths(opts),
    admin: resolveAdminOptions(opts.admin),
    redis: opts.redis,
    cluster: clusterOption(opts)
  }
}

function envSplicePath (): SplicePath {
  try {
    return defaultSplicePath()
  } catch (err) {
    throw new RendezvousOptionError((err as Error).message)
  }
}
