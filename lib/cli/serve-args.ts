import { isIP } from 'node:net'
import { parseArgs } from 'node:util'
import type { LogLevel, ServeCluster, ServeLimits } from '../server/serve-options'
import { clusterArgs } from './cluster-args'
import { argsError } from './arg-errors'
import { CliError } from './cli-error'
import { logLevel, nonEmpty, port } from './flags'

/** `rendezvous serve` flags (docs/cli.md), as given on the command line. */
export interface ServeArgs {
  help: boolean
  host: string
  port: number
  dataDir: string
  tlsCert?: string
  tlsKey?: string
  /** More names for the generated certificate (--tls-name, repeatable). */
  tlsNames: string[]
  noTls: boolean
  /** In ms. */
  waitTimeout: number
  metricsPath: string | false
  logLevel: LogLevel
  limits: ServeLimits
  cluster?: ServeCluster
}

const OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  host: { type: 'string', default: '127.0.0.1' },
  port: { type: 'string', default: '8443' },
  'data-dir': { type: 'string', default: '.rendezvous' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'tls-name': { type: 'string', multiple: true },
  'no-tls': { type: 'boolean', default: false },
  'wait-timeout': { type: 'string', default: '10' },
  'metrics-path': { type: 'string' },
  'no-metrics': { type: 'boolean', default: false },
  'log-level': { type: 'string', default: 'info' },
  'splice-idle-timeout': { type: 'string' },
  'max-connections-per-address': { type: 'string' },
  'max-spliced': { type: 'string' },
  'handshake-timeout': { type: 'string' },
  redis: { type: 'string' },
  'cluster-secret': { type: 'string' },
  'peer-host': { type: 'string' },
  'peer-port': { type: 'string' },
  advertise: { type: 'string' }
} as const

/** Parses and checks `serve` flags; every problem is a one-line CliError. `env` supplies RENDEZVOUS_CLUSTER_SECRET. */
export function parseServeArgs (args: string[], env: NodeJS.ProcessEnv = process.env): ServeArgs {
  const { values } = parse(args)
  if (values.help === true) return { ...defaults(), help: true }
  const cluster = clusterArgs(values, env)
  const tlsCert = nonEmpty(values['tls-cert'], '--tls-cert')
  const tlsKey = nonEmpty(values['tls-key'], '--tls-key')
  if ((tlsCert === undefined) !== (tlsKey === undefined)) {
    throw new CliError(tlsCert === undefined ? '--tls-key needs --tls-cert' : '--tls-cert needs --tls-key')
  }
  if (values['no-tls'] && tlsCert !== undefined) throw new CliError('--no-tls cannot be combined with --tls-cert and --tls-key')
  const tlsNames = (values['tls-name'] ?? []).map(tlsName)
  if (tlsNames.length > 0 && (values['no-tls'] || tlsCert !== undefined)) throw new CliError('--tls-name names the generated certificate; it cannot be combined with --tls-cert or --no-tls')
  if (values['no-metrics'] && values['metrics-path'] !== undefined) throw new CliError('--no-metrics cannot be combined with --metrics-path')
  return {
    help: false,
    host: nonEmpty(values.host, '--host') as string,
    port: port(values.port),
    dataDir: nonEmpty(values['data-dir'], '--data-dir') as string,
    tlsCert,
    tlsKey,
    tlsNames,
    noTls: values['no-tls'],
    waitTimeout: seconds(values['wait-timeout'], '--wait-timeout'),
    metricsPath: values['no-metrics'] ? false : metricsPath(values['metrics-path'] ?? '/metrics'),
    logLevel: logLevel(values['log-level']),
    limits: limits(values),
    ...(cluster === undefined ? {} : { cluster })
  }
}

function limits (values: Record<string, string | string[] | boolean | undefined>): ServeLimits {
  const out: ServeLimits = {}
  const time = (flag: string): number | undefined => {
    const v = values[flag]
    return typeof v === 'string' ? (v.trim() === '0' ? 0 : seconds(v, `--${flag}`)) : undefined
  }
  const count = (flag: string): number | undefined => {
    const v = values[flag]
    if (typeof v !== 'string') return undefined
    if (!/^\d{1,9}$/.test(v)) throw new CliError(`--${flag} must be a whole number, 0 for no cap, got ${JSON.stringify(v)}`)
    return Number(v)
  }
  const set = <K extends keyof ServeLimits>(key: K, value: number | undefined): void => { if (value !== undefined) out[key] = value }
  set('spliceIdleTimeout', time('splice-idle-timeout'))
  set('handshakeTimeout', time('handshake-timeout'))
  set('maxConnectionsPerAddress', count('max-connections-per-address'))
  set('maxSpliced', count('max-spliced'))
  return out
}

function defaults (): ServeArgs {
  return { help: false, host: '127.0.0.1', port: 8443, dataDir: '.rendezvous', tlsNames: [], noTls: false, waitTimeout: 10_000, metricsPath: '/metrics', logLevel: 'info', limits: {} }
}

function parse (args: string[]): ReturnType<typeof parseArgs<{ args: string[], options: typeof OPTIONS, strict: true, allowPositionals: false }>> {
  try {
    return parseArgs({ args, options: OPTIONS, strict: true, allowPositionals: false })
  } catch (err) {
    throw argsError(err, 'serve')
  }
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

/** A --tls-name: a DNS name (a leading `*.` allowed) or an IP address. */
function tlsName (name: string): string {
  const dns = /^(\*\.)?(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?$/
  if (isIP(name) === 0 && (name.length > 253 || !dns.test(name))) {
    throw new CliError(`--tls-name must be a DNS name or an IP address, got ${JSON.stringify(name)}`)
  }
  return name.replace(/\.$/, '').toLowerCase()
}
