import type { RendezvousOptions } from '../options'
import type { ServeCluster, ServeLimits } from '../server/serve-options'
import { clusterArgs } from './cluster-args'
import { readAdminToken } from './admin-token'
import { CliError } from './cli-error'
import { ORIGINS, pluginOptionsOf, resolveConfig, type Origin, type Resolved } from './config'
import { SERVE_TABLE, type ServeConfig } from './serve-table'
import type { HostPort } from './values'

/** `rendezvous serve` options (docs/cli.md, docs/operations.md), resolved from flags, environment and config file. */
export type ServeArgs = Omit<ServeConfig, 'help' | 'metricsPath' | 'noTls'> & {
  help: boolean
  /** More names for the generated certificate (--tls-name, repeatable). */
  tlsNames: string[]
  noTls: boolean
  metricsPath: string | false
  /** The hardening limits given explicitly; the others keep the plugin's defaults. */
  limits: ServeLimits
  /** Every plugin option given explicitly, by its plugin name. */
  plugin: Omit<RendezvousOptions, 'registry' | 'metrics' | 'dataDir'>
  /** `tokenWarning`: the token file is readable by other users. */
  admin?: HostPort & { token: string, rotateOverlap: number, tokenWarning?: string }
  /** Cluster mode (docs/cluster.md), when --redis is given. */
  cluster?: ServeCluster
  /** What the config file earned (readable by others while it holds a secret), printed at start. */
  warnings: string[]
}

const LIMITS = ['spliceIdleTimeout', 'handshakeTimeout', 'maxConnectionsPerAddress', 'maxSpliced'] as const

/** Parses and checks `serve` options (flag > env > file > default); every problem is a one-line CliError. */
export function parseServeArgs (args: string[], env: NodeJS.ProcessEnv = {}): ServeArgs {
  const c = resolveConfig('serve', SERVE_TABLE, { args, env })
  const given = (key: string): boolean => c.explicit.has(key)
  const cluster = c.help === true
    ? undefined
    : clusterArgs({
      redis: c.redis,
      'cluster-secret': c.clusterSecret,
      'peer-host': c.peerHost,
      'peer-port': c.peerPort?.toString(),
      advertise: c.advertise,
      'peer-tls-cert': c.peerTlsCert,
      'peer-tls-key': c.peerTlsKey,
      'peer-ca': c.peerCa,
      'peer-tls-name': c.peerTlsName
    }, env, flag => c.sources.get(flag.replace(/-([a-z])/g, (_, ch: string) => ch.toUpperCase())))
  const tls = tlsMode(c)
  if (c.noMetrics === true && (given('metricsPath') || given('metricsListen'))) {
    throw new CliError(`--no-metrics cannot be combined with ${given('metricsPath') ? '--metrics-path' : '--metrics-listen'}`)
  }
  distinctRoutes(c)
  sharesFit(c)
  if (c.help !== true) distinctPorts(c, cluster)
  const plugin = pluginOptionsOf(SERVE_TABLE, c, c.explicit) as ServeArgs['plugin']
  const limits: ServeLimits = {}
  for (const key of LIMITS) if (plugin[key] !== undefined) limits[key] = plugin[key]
  return {
    ...c,
    ...tls,
    help: c.help === true,
    metricsPath: c.noMetrics === true ? false : c.metricsPath,
    limits,
    plugin,
    admin: c.help === true ? undefined : admin(c),
    ...(cluster === undefined ? {} : { cluster })
  }
}

type TlsMode = Pick<ServeArgs, 'noTls' | 'tlsCert' | 'tlsKey' | 'tlsNames'>
type TlsChoice = 'noTls' | 'pair' | 'names'

/**
 * How serve does TLS is one setting, said in one of three ways: --no-tls,
 * a --tls-cert/--tls-key pair, or names for the generated certificate
 * (--tls-name). The highest source (flag, variable, file) that says one of
 * them decides, as for any other option, and what lower sources say of TLS
 * is dropped; two of them said in that one source contradict each other.
 */
function tlsMode (c: ServeConfig & Resolved): TlsMode {
  const keys: Record<TlsChoice, string[]> = {
    noTls: c.noTls === true ? ['noTls'] : [],
    pair: ['tlsCert', 'tlsKey'].filter(key => c.explicit.has(key)),
    names: c.tlsName.length > 0 ? ['tlsName'] : []
  }
  const rank = (key: string): number => ORIGINS.indexOf(c.origins.get(key) as Origin)
  const said = (Object.keys(keys) as TlsChoice[]).filter(choice => keys[choice].length > 0)
  const top = Math.min(...said.flatMap(choice => keys[choice].map(rank)))
  // Only what the deciding source itself says: a half of the pair from a lower one contradicts nothing there.
  const at = (choice: TlsChoice): string[] => keys[choice].filter(key => rank(key) === top).map(key => c.sources.get(key) as string)
  const deciding = said.filter(choice => at(choice).length > 0)
  if (deciding.includes('names') && deciding.length > 1) {
    throw new CliError(`${at('names')[0]} names the generated certificate; it cannot be combined with ${[...at('noTls'), ...at('pair')].join(' and ')}`)
  }
  if (deciding.length > 1) throw new CliError(`${at('noTls')[0]} cannot be combined with ${at('pair').join(' and ')}`)
  const none: TlsMode = { noTls: false, tlsCert: undefined, tlsKey: undefined, tlsNames: [] }
  switch (deciding[0]) {
    case 'noTls': return { ...none, noTls: true }
    case 'names': return { ...none, tlsNames: c.tlsName }
    case 'pair':
      if (c.tlsKey === undefined) throw new CliError(`${c.sources.get('tlsCert') as string} needs --tls-key`)
      if (c.tlsCert === undefined) throw new CliError(`${c.sources.get('tlsKey') as string} needs --tls-cert`)
      return { ...none, tlsCert: c.tlsCert, tlsKey: c.tlsKey }
    default: return none
  }
}

// Two routes on one path would fail deep inside Fastify's router, as a stack trace.
function distinctRoutes (c: ServeConfig): void {
  const routes: Array<[string, string]> = [['--health-path', c.healthPath], ['--ready-path', c.readyPath]]
  if (c.noMetrics !== true && c.metricsListen === undefined) routes.push(['--metrics-path', c.metricsPath])
  for (const [i, [flag, path]] of routes.entries()) {
    const other = routes.slice(i + 1).find(([, p]) => p === path)
    if (other !== undefined) throw new CliError(`${flag} and ${other[0]} are both ${path}: each route needs a path of its own`)
  }
}

// The plugin refuses these too, but by their option names and once the command line is long past (exit 1).
function sharesFit (c: ServeConfig): void {
  const shares = [['--replay-cache-per-id', c.replayCachePerId, '--replay-cache-size', c.replayCacheSize], ['--max-spliced-per-id', c.maxSplicedPerId, '--max-spliced', c.maxSpliced],
    ['--max-waiters-per-address', c.maxWaitersPerAddress, '--max-waiters-per-id', c.maxWaitersPerId]] as const
  for (const [flag, share, poolFlag, pool] of shares) {
    if (share === undefined || share <= pool) continue
    throw new CliError(pool === 0 ? `${flag} must be 0 while ${poolFlag} is 0 (nothing to share)` : `${flag} must be at most ${poolFlag} (${pool}), got ${share}`)
  }
}

// Two listeners on one port would fail only once the first listens, as a port in use (exit 1). Hosts are not
// compared: which names and wildcards overlap is the system's to decide, and a port of its own each is simplest.
function distinctPorts (c: ServeConfig, cluster: ServeCluster | undefined): void {
  const ports: Array<[string, number | undefined]> = [
    ['--port', c.port],
    ['--admin-listen', c.adminListen?.port],
    ['--metrics-listen', c.metricsListen?.port],
    ['--peer-port', cluster?.peerPort]
  ]
  for (const [i, [flag, port]] of ports.entries()) {
    const earlier = ports.slice(0, i).find(([, p]) => p === port && port !== 0 && port !== undefined)
    if (earlier !== undefined) throw new CliError(`${flag} must be another port than ${earlier[0]}`)
  }
}

function admin (c: ServeConfig): ServeArgs['admin'] {
  if (c.adminListen === undefined && c.adminTokenFile === undefined) return undefined
  if (c.adminListen === undefined) throw new CliError('--admin-token-file needs --admin-listen')
  if (c.adminTokenFile === undefined) throw new CliError('--admin-listen needs --admin-token-file')
  const { token, warning } = readAdminToken(c.adminTokenFile)
  return { ...c.adminListen, token, rotateOverlap: c.adminRotateOverlap, ...(warning === undefined ? {} : { tokenWarning: warning }) }
}
