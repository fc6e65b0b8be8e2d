import type { RendezvousOptions } from '../options'

/**
 * serve caps its connections in all (the plugin's maxConnections, off there
 * because an app's own connections count too): the counted ones are bounded
 * one by one (maxSpliced, maxWaiters, maxPendingConnects, the timeouts), but
 * idle connections and handshakes from many addresses are not. Lower where
 * the open-file limit is (open-files.ts).
 */
export const SERVE_MAX_CONNECTIONS = 20_000

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = typeof LOG_LEVELS[number]

/** What `buildServer` needs: everything already read from disk and checked. */
export interface ServeOptions {
  dataDir: string
  /** The HTTPS key pair, or false to serve plain HTTP. */
  tls: { cert: Buffer, key: Buffer } | false
  /** How long a mobile client waits for a parked connection, in ms. */
  waitTimeout: number
  /** Where Prometheus text is served, or false for no endpoint and no metrics. */
  metricsPath: string | false
  logLevel: LogLevel
  /** Where log lines go. Default: process.stdout. */
  logStream?: NodeJS.WritableStream
  /** Human-readable logs instead of JSON lines. */
  prettyLogs?: boolean
  /** On close, how long spliced pairs get to finish, in ms. */
  closeGracePeriod?: number
  /** The plugin's limits of the same names; unset keeps the plugin's defaults. */
  limits?: ServeLimits
  /** Serve metrics on this address instead of the public port. */
  metricsListen?: { host: string, port: number }
  /** Further plugin options (limits, health paths, admin listener); the fields above win. */
  plugin?: Omit<RendezvousOptions, 'registry' | 'metrics' | 'dataDir'>
  /** Cluster mode (docs/cluster.md): IDs live in Redis instead of the data dir. */
  cluster?: ServeCluster
}

/** `--redis URL --cluster-secret SECRET [--peer-host] [--peer-port] [--advertise]`. */
export interface ServeCluster {
  redis: string
  secret: string
  peerHost: string
  peerPort: number
  advertise?: string
  /** Mutual TLS on the peer link (--peer-tls-cert, --peer-tls-key, --peer-ca); plain TCP without. */
  peerTls?: PeerTlsMaterial
}

/** This node's peer certificate and key, the CA every node's peer certificate is signed by, read and checked. */
export interface PeerTlsMaterial {
  cert: Buffer
  key: Buffer
  ca: Buffer
  /** The name the dialled node's certificate must carry; default the host of its advertised address. */
  name?: string
}

/** Hardening limits `serve` passes to the plugin (ms for times, 0 for off). */
export interface ServeLimits {
  spliceIdleTimeout?: number
  maxConnectionsPerAddress?: number
  maxSpliced?: number
  handshakeTimeout?: number
}
