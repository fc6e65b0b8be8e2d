import { advertiseProblem } from '../cluster/options'
import type { ServeCluster } from '../server/serve-options'
import { CliError } from './cli-error'
import { nonEmpty, port } from './flags'
import { peerTlsArgs } from './peer-tls-args'

const CLUSTER_FLAGS = ['cluster-secret', 'peer-host', 'peer-port', 'advertise', 'peer-tls-cert', 'peer-tls-key', 'peer-ca', 'peer-tls-name'] as const

type ClusterValues = Partial<Record<'redis' | typeof CLUSTER_FLAGS[number], string | boolean>>

const str = (value: string | boolean | undefined): string | undefined => typeof value === 'string' ? value : undefined

/**
 * `serve --redis URL --cluster-secret SECRET [--peer-host] [--peer-port] [--advertise] [--peer-tls-cert --peer-tls-key --peer-ca [--peer-tls-name]]`
 * (docs/cluster.md). The URL itself was checked with serve's other options, where its source is known.
 */
export function clusterArgs (values: ClusterValues, env: NodeJS.ProcessEnv, sourceOf: (flag: string) => string | undefined = () => undefined): ServeCluster | undefined {
  const redis = nonEmpty(str(values.redis), '--redis')
  if (redis === undefined) {
    const stray = CLUSTER_FLAGS.find(flag => values[flag] !== undefined)
    // Named where it came from: a variable left in the shell, or a key in the file, is not a flag the user typed.
    if (stray !== undefined) throw new CliError(`${sourceOf(stray) ?? `--${stray}`} needs --redis URL (cluster mode)`)
    return undefined
  }
  const secret = nonEmpty(str(values['cluster-secret']), '--cluster-secret') ?? env.RENDEZVOUS_CLUSTER_SECRET
  if (secret === undefined || secret.length < 16) {
    throw new CliError('cluster mode needs --cluster-secret SECRET or RENDEZVOUS_CLUSTER_SECRET, 16 characters or more, the same on every node')
  }
  const advertise = nonEmpty(str(values.advertise), '--advertise')
  if (advertise !== undefined && !/^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(advertise)) {
    throw new CliError(`--advertise must be HOST:PORT, got ${JSON.stringify(advertise)}`)
  }
  const problem = advertise === undefined ? undefined : advertiseProblem(advertise)
  if (problem !== undefined) throw new CliError(`--advertise ${problem}, got ${JSON.stringify(advertise)}`)
  const peerHost = nonEmpty(str(values['peer-host']), '--peer-host') ?? '127.0.0.1'
  if (advertise === undefined && ['0.0.0.0', '::'].includes(peerHost)) {
    throw new CliError(`--peer-host ${peerHost} is no address other nodes can dial: add --advertise HOST:PORT`)
  }
  const peerPort = str(values['peer-port'])
  const peerTls = peerTlsArgs({ cert: str(values['peer-tls-cert']), key: str(values['peer-tls-key']), ca: str(values['peer-ca']), name: str(values['peer-tls-name']) }, dialledHost({ peerHost, advertise }))
  return {
    redis,
    secret,
    peerHost,
    peerPort: peerPort === undefined ? 0 : port(peerPort, '--peer-port'),
    ...(advertise === undefined ? {} : { advertise }),
    ...(peerTls === undefined ? {} : { peerTls })
  }
}

/** The host other nodes dial, which the peer certificate must name: that of --advertise; without it, the node publishes --peer-host. */
export function dialledHost (c: Pick<ServeCluster, 'peerHost' | 'advertise'>): string {
  return c.advertise === undefined ? c.peerHost : c.advertise.slice(0, c.advertise.lastIndexOf(':'))
}
