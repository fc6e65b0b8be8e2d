import { randomUUID } from 'node:crypto'
import { isIP } from 'node:net'
import type { TlsOptions, ConnectionOptions } from 'node:tls'
import { RendezvousOptionError } from '../errors'
import { MAX_TIMER_MS } from '../timer-limit'

/** TLS on the peer link: `server` for the listener, `client` for the links this node opens. */
export interface PeerTlsOptions { server?: TlsOptions, client?: ConnectionOptions }

/** The `cluster` plugin option: how this node joins the others. Needs the `redis` option too. */
export interface ClusterOptions {
  /** Authenticates links between nodes; the same on every node, 16 characters or more. */
  secret: string
  /** Where the peer listener binds. Default 127.0.0.1. */
  peerHost?: string
  /** Default 0: any free port, published in Redis. */
  peerPort?: number
  /** host:port other nodes use to reach the peer listener. Default peerHost:the bound port. */
  advertise?: string
  /** TLS on the peer link: `server` for the listener, `client` for the links this node opens. */
  peerTls?: PeerTlsOptions
  /** Prefix of every Redis key and channel. Default 'rendezvous:'. */
  keyPrefix?: string
  /** This node's name on the map. Default: a random UUID per start. */
  nodeId?: string
  /** How long a node stays on the map after its last heartbeat, in ms. Default 5000. */
  presenceTtl?: number
  /** Heartbeat period, in ms. Default 1000. */
  heartbeat?: number
  /** Full re-reads of the ID registry, in ms. Default 5000. */
  resyncInterval?: number
  /** Longest wait for Redis to connect and answer at start, in ms. Default 5000, under Fastify's plugin timeout. */
  connectTimeout?: number
  /** Longest wait for one Redis command, in ms. Default 1000. */
  commandTimeout?: number
  /** Time one node gets to answer a forwarding request, in ms. Default 3000. */
  forwardTimeout?: number
  /** While a client waits with nothing parked anywhere, how often other nodes are asked again, in ms. Default 250. */
  retryInterval?: number
}

export type ResolvedClusterOptions = Required<Omit<ClusterOptions, 'advertise' | 'peerTls'>> & Pick<ClusterOptions, 'advertise' | 'peerTls'>

const TIMES = { presenceTtl: 5000, heartbeat: 1000, resyncInterval: 5000, connectTimeout: 5000, commandTimeout: 1000, forwardTimeout: 3000, retryInterval: 250 } as const

export function resolveClusterOptions (opts: ClusterOptions | undefined): ResolvedClusterOptions {
  if (opts === undefined || typeof opts.secret !== 'string' || opts.secret.length < 16) {
    throw new RendezvousOptionError('cluster mode needs cluster.secret, a string of 16 characters or more, the same on every node')
  }
  const times = {} as Record<keyof typeof TIMES, number>
  for (const [name, fallback] of Object.entries(TIMES) as Array<[keyof typeof TIMES, number]>) {
    const value = opts[name] ?? fallback
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > MAX_TIMER_MS) {
      throw new RendezvousOptionError(`cluster.${name} must be a positive number of ms, at most ${MAX_TIMER_MS}, got ${String(value)}`)
    }
    times[name] = value
  }
  if (times.heartbeat * 2 > times.presenceTtl) throw new RendezvousOptionError('cluster.presenceTtl must be at least twice cluster.heartbeat')
  const peerPort = opts.peerPort ?? 0
  if (!Number.isInteger(peerPort) || peerPort < 0 || peerPort > 65535) throw new RendezvousOptionError(`cluster.peerPort must be a port number, got ${String(peerPort)}`)
  if (opts.advertise !== undefined) {
    const problem = typeof opts.advertise === 'string' ? advertiseProblem(opts.advertise) : 'must be a HOST:PORT string'
    if (problem !== undefined) throw new RendezvousOptionError(`cluster.advertise ${problem}, got ${JSON.stringify(opts.advertise)}`)
  }
  const nodeId = opts.nodeId ?? randomUUID()
  if (!/^[A-Za-z0-9._~-]{1,64}$/.test(nodeId)) throw new RendezvousOptionError('cluster.nodeId must be 1 to 64 characters of [A-Za-z0-9._~-]')
  return {
    ...times,
    secret: opts.secret,
    peerHost: opts.peerHost ?? '127.0.0.1',
    peerPort,
    advertise: opts.advertise,
    peerTls: opts.peerTls,
    keyPrefix: opts.keyPrefix ?? 'rendezvous:',
    nodeId
  }
}

const WILDCARDS = new Set(['0.0.0.0', '::', '0:0:0:0:0:0:0:0'])

/** The host:port other nodes reach this one at. */
export function advertisedAddress (o: ResolvedClusterOptions, boundPort: number): string {
  if (o.advertise !== undefined) return o.advertise
  if (WILDCARDS.has(o.peerHost)) {
    throw new RendezvousOptionError(`the peer listener binds ${o.peerHost}, which other nodes cannot dial: set cluster.advertise (--advertise HOST:PORT)`)
  }
  return `${o.peerHost.includes(':') ? `[${o.peerHost}]` : o.peerHost}:${boundPort}`
}

/** host and port of `host:port`, with an IPv6 host in brackets; the port is not range-checked. */
export function parseHostPort (address: string): { host: string, port: number } | undefined {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(address)
  return match === null ? undefined : { host: match[1] ?? match[2]!, port: Number(match[3]) }
}

/** Why other nodes could not dial `address` (--advertise), or undefined when they can. */
export function advertiseProblem (address: string): string | undefined {
  const parsed = parseHostPort(address)
  if (parsed === undefined) return 'must be HOST:PORT'
  if (parsed.port < 1 || parsed.port > 65535) return `has port ${parsed.port}, which no node can dial: use 1 to 65535`
  // 0.0.0.0 and :: mean "every interface" to a listener and "this machine" to a dialler: each node would dial itself.
  if (isIP(parsed.host) !== 0 && /^[0:.]+$/.test(parsed.host)) return `names ${parsed.host}, an address other nodes cannot dial: give this node's own address or name`
  return undefined
}
