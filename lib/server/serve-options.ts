import type { RendezvousOptions } from '../options'
import { argsError } from '../cli/arg-errors'
import { parseArgs } from 'node:util'
import { CliError } from '../cli/cli-error'

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
  /** Serve metrics on this address instead of the public port. */
  metricsListen?: { host: string, port: number }
  /** Further plugin options (limits, health paths, admin listener); the fields above win. */
  plugin?: Omit<RendezvousOptions, 'registry' | 'metrics' | 'dataDir'>
}

/** `rendezvous serve` flags, decisions §5, as given on the command line. */
export interface ServeArgs {
  help: boolean
  host: string
  port: number
  dataDir: string
  tlsCert?: string
  tlsKey?: string
  noTls: boolean
  /** In ms. */
  waitTimeout: number
  metricsPath: string | false
  logLevel: LogLevel
}

const OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  host: { type: 'string', default: '127.0.0.1' },
  port: { type: 'string', default: '8443' },
  'data-dir': { type: 'string', default: '.rendezvous' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'no-tls': { type: 'boolean', default: false },
  'wait-timeout': { type: 'string', default: '10' },
  'metrics-path': { type: 'string' },
  'no-metrics': { type: 'boolean', default: false },
  'log-level': { type: 'string', default: 'info' },
  redis: { type: 'string' },
  'cluster-secret': { type: 'string' },
  'peer-host': { type: 'string' },
  'peer-port': { type: 'string' },
  advertise: { type: 'string' }
} as const

const CLUSTER_FLAGS = ['redis', 'cluster-secret', 'peer-host', 'peer-port', 'advertise'] as const

/** Parses and checks `serve` flags; every problem is a one-line CliError. */
export function parseServeArgs (args: string[]): ServeArgs {
  const { values } = parse(args)
  if (values.help === true) return { ...defaults(), help: true }
  const cluster = CLUSTER_FLAGS.filter(flag => values[flag] !== undefined)
  if (cluster.length > 0) {
    throw new CliError(`cluster mode (--${cluster[0]}) is not available in this version`, 1)
  }
  const tlsCert = nonEmpty(values['tls-cert'], '--tls-cert')
  const tlsKey = nonEmpty(values['tls-key'], '--tls-key')
  if ((tlsCert === undefined) !== (tlsKey === undefined)) {
    throw new CliError(tlsCert === undefined ? '--tls-key needs --tls-cert' : '--tls-cert needs --tls-key')
  }
  if (values['no-tls'] && tlsCert !== undefined) throw new CliError('--no-tls cannot be combined with --tls-cert and --tls-key')
  if (values['no-metrics'] && values['metrics-path'] !== undefined) throw new CliError('--no-metrics cannot be combined with --metrics-path')
  return {
    help: false,
    host: nonEmpty(values.host, '--host') as string,
    port: port(values.port),
    dataDir: nonEmpty(values['data-dir'], '--data-dir') as string,
    tlsCert,
    tlsKey,
    noTls: values['no-tls'],
    waitTimeout: seconds(values['wait-timeout'], '--wait-timeout'),
    metricsPath: values['no-metrics'] ? false : metricsPath(values['metrics-path'] ?? '/metrics'),
    logLevel: logLevel(values['log-level'])
  }
}

function defaults (): ServeArgs {
  return { help: false, host: '127.0.0.1', port: 8443, dataDir: '.rendezvous', noTls: false, waitTimeout: 10_000, metricsPath: '/metrics', logLevel: 'info' }
}

function parse (args: string[]): ReturnType<typeof parseArgs<{ args: string[], options: typeof OPTIONS, strict: true, allowPositionals: false }>> {
  try {
    return parseArgs({ args, options: OPTIONS, strict: true, allowPositionals: false })
  } catch (err) {
    throw argsError(err, 'serve')
  }
}

function nonEmpty (value: string | undefined, flag: string): string | undefined {
  if (value !== undefined && value.trim() === '') throw new CliError(`${flag} must not be empty`)
  return value
}

function port (value: string): number {
  const n = Number(value)
  if (!/^\d+$/.test(value) || n > 65535) throw new CliError(`--port must be an integer from 0 to 65535, got ${JSON.stringify(value)}`)
  return n
}

function seconds (value: string, flag: string): number {
  const n = Number(value)
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0 || n > 86_400) {
    throw new CliError(`${flag} must be a number of seconds above 0 and at most 86400, got ${JSON.stringify(value)}`)
  }
  return Math.round(n * 1000)
}

function metricsPath (value: string): string {
  // A mobile client's first, credential-less request must meet the 401 challenge, so '/' is not for metrics.
  if (!/^\/[A-Za-z0-9._~\-/]+$/.test(value) || value === '/healthz') {
    throw new CliError(`--metrics-path must be a path such as /metrics, other than / and /healthz, got ${JSON.stringify(value)}`)
  }
  return value
}

function logLevel (value: string): LogLevel {
  if (!(LOG_LEVELS as readonly string[]).includes(value)) {
    throw new CliError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(value)}`)
  }
  return value as LogLevel
}
