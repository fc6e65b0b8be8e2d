import { resolve } from 'node:path'
import type { AddressInfo } from 'node:net'
import { constants } from 'node:os'
import type { Server } from 'node:tls'
import type { FastifyInstance } from 'fastify'
import { buildServer, closeDeadline, closeServer, metricsListenerAddress } from '../server/app'
import { loadCertificate, type Certificate, type CertificateRequest } from '../server/certificate'
import { reloadCertificate, type CertificateReloader, type ReloadOptions } from '../server/certificate-reload'
import { tlsMetrics, type TlsListener } from '../server/tls-metrics'
import type { ServeOptions } from '../server/serve-options'
import { maxConnectionsWarning, openFileLimit } from '../server/open-files'
import type { RendezvousOptions } from '../options'
import type { CliIo } from './cli-error'
import { shellQuote } from '../shell-quote'
import { selfCommand } from './invocation'
import { dialledHost } from './cluster-args'
import { reloadPeerTls } from './peer-tls-reload'
import { reportRegistryWarnings } from '../registry/warnings'
import { openDataDir } from '../data-dir'
import { reloadableAdminToken, type AdminTokenReload } from './admin-token'
import { ignoreOutputErrors } from './quiet-output'
import { redactUrl } from './redact-url'
import { unusedFileIds } from './redis-ids'
import { command, formatHost, helpless, startupError } from './report'
import { parseServeArgs, type ServeArgs } from './serve-args'
import { watchSignals, type Signals } from './signals'
import { SERVE_USAGE } from './usage'

/** `rendezvous serve`: runs until SIGTERM or SIGINT, then closes gracefully and resolves 0. */
export async function runServe (args: string[], io: CliIo): Promise<number> {
  ignoreOutputErrors(io.stdout, io.stderr)
  return await command(io, SERVE_USAGE, () => helpless(parseServeArgs(args, io.env)), async parsed => await serve(parsed, io))
}

async function serve (parsed: ServeArgs, io: CliIo): Promise<number> {
  // A file-size limit (ulimit -f, systemd's LimitFSIZE) reached by the replay
  // journal must fail that write (EFBIG: CONNECTs get 503), not kill the relay
  // and everything it carries with SIGXFSZ's core dump. Node does not ignore
  // SIGXFSZ in every environment (it does not under tap), so serve does.
  const xfsz = 'SIGXFSZ' in constants.signals
  if (xfsz) process.on('SIGXFSZ', ignoreSignal)
  // Registry warnings (an ids.json or journal others can read, a secret other tools refuse) are told as the other
  // start-up warnings are; once serve listens, they are logged.
  const stopWarning = reportRegistryWarnings(message => { warn(io, message) })
  try {
    return await serveUntilSignal(parsed, io)
  } finally {
    stopWarning()
    if (xfsz) process.removeListener('SIGXFSZ', ignoreSignal)
  }
}

function ignoreSignal (): void {}

function warn (io: CliIo, warning: string): void {
  io.stderr.write(`rendezvous: warning: ${warning}\n`)
}

async function serveUntilSignal (parsed: ServeArgs, io: CliIo): Promise<number> {
  for (const warning of parsed.warnings) warn(io, warning)
  const leftIds = parsed.cluster === undefined ? undefined : await unusedFileIds(parsed.dataDir, parsed.cluster.redis)
  if (leftIds !== undefined) warn(io, leftIds)
  const given = parsed.plugin.maxConnections
  const descriptors = given === undefined ? undefined : maxConnectionsWarning(given, openFileLimit())
  if (descriptors !== undefined) warn(io, descriptors)
  const request: CertificateRequest = {
    dataDir: parsed.dataDir,
    host: parsed.host,
    certFile: parsed.tlsCert,
    keyFile: parsed.tlsKey,
    certLabel: `--tls-cert ${parsed.tlsCert}`,
    keyLabel: `--tls-key ${parsed.tlsKey}`,
    names: parsed.tlsNames
  }
  // The generated certificate is the first thing written there: a data dir that cannot be used is named as such, not by a bare ENOTDIR.
  if (!parsed.noTls && parsed.tlsCert === undefined) await openDataDir(parsed.dataDir)
  const certificate = parsed.noTls ? undefined : await loadCertificate(request)
  const tokenWarning = parsed.admin?.tokenWarning
  const warnings = [...certificate?.warnings ?? [], ...tokenWarning === undefined ? [] : [tokenWarning]]
  for (const warning of warnings) warn(io, warning)
  const adminToken = parsed.admin === undefined ? undefined : reloadableAdminToken(parsed.adminTokenFile!, parsed.admin.token)
  // The admin page's agent command needs the bound port, known once the app listens.
  const bound: { app?: FastifyInstance } = {}
  const options: ServeOptions = {
    dataDir: parsed.dataDir,
    tls: certificate === undefined ? false : { cert: certificate.cert, key: certificate.key },
    waitTimeout: parsed.waitTimeout,
    limits: parsed.limits,
    closeGracePeriod: parsed.closeGracePeriod,
    metricsPath: parsed.metricsPath,
    metricsListen: parsed.metricsListen,
    plugin: { ...parsed.plugin, admin: adminOptions(parsed, adminToken?.token, () => publicUrl(parsed, bound.app, certificate), certificate) },
    logLevel: parsed.logLevel,
    logStream: io.stdout,
    prettyLogs: (io.stdout as { isTTY?: boolean }).isTTY === true,
    cluster: parsed.cluster
  }
  const app = await buildServer(options).catch((err: unknown) => { throw startupError(err, parsed) })
  bound.app = app
  try {
    await app.listen({ host: parsed.host, port: parsed.port })
    await certificate?.save?.()
  } catch (err) {
    await closeServer(app, 2_000).catch(() => {})
    throw startupError(err, parsed)
  }
  // Only now: until the server listens there is nothing to close gracefully, and a stuck start must stay killable.
  const signals = watchSignals()
  const stopReloading = watchReloads(app, parsed, signals, certificate === undefined ? undefined : { request, certificate }, adminToken?.reload)
  const stopLogging = reportRegistryWarnings(message => { app.log.warn(message) })
  try {
    io.stdout.write(banner(parsed, boundPort(app), certificate, app.rendezvous.cluster) + listeners(app, parsed))
    const signal = await signals.first
    app.log.info({ signal }, 'shutting down')
    const outcome = await closeServer(app, closeDeadline(options), signals.second)
    return outcome === 'forced' ? 1 : 0
  } finally {
    stopLogging()
    stopReloading()
    signals.stop()
  }
}

/**
 * SIGHUP, or a change to their files, reloads the public certificate and the
 * peer link's TLS material (docs/operations.md). Each is measured from the
 * start: the certificate it presents and what every reload did. SIGHUP also
 * rereads the admin token file.
 */
function watchReloads (app: FastifyInstance, parsed: ServeArgs, signals: Signals, publicTls: { request: CertificateRequest, certificate: Certificate } | undefined, adminToken?: AdminTokenReload): () => void {
  const tls = tlsMetrics(app.rendezvous.metrics)
  const measured = (listener: TlsListener, cert: Buffer): ReloadOptions => {
    tls.serving(listener, cert)
    return {
      interval: 2000,
      onReload: (result, next) => {
        tls.reloaded(listener, result)
        if (next !== undefined) tls.serving(listener, next)
      }
    }
  }
  const reloaders: CertificateReloader[] = []
  if (publicTls !== undefined) {
    const { request, certificate } = publicTls
    reloaders.push(reloadCertificate(app.server as unknown as Server, request, certificate, app.log, measured('public', certificate.cert)))
  }
  const peer = parsed.cluster?.peerTls
  const node = app.rendezvous.cluster
  if (peer !== undefined && node !== undefined) {
    const values = { cert: parsed.peerTlsCert!, key: parsed.peerTlsKey!, ca: parsed.peerCa!, name: parsed.peerTlsName }
    reloaders.push(reloadPeerTls(node.setPeerTls, { values, verifyHost: dialledHost(parsed.cluster!) }, peer, app.log, measured('peer', peer.cert)))
  }
  for (const reloader of reloaders) signals.onHangup(() => reloader.reload('SIGHUP'))
  if (adminToken !== undefined) signals.onHangup(() => adminToken(app.log, 'SIGHUP'))
  // Node's default for SIGHUP ends the process, relays and all, without a word: a `systemctl reload`
  // meant for the certificates must not take down a relay that has none.
  if (reloaders.length === 0 && adminToken === undefined) signals.onHangup(() => { app.log.info('SIGHUP: nothing to reload, serve has no certificate files (IDs are reread on their own)') })
  return () => { for (const reloader of reloaders) reloader.stop() }
}

/** Where the admin and metrics listeners are, when serve has them. */
function listeners (app: FastifyInstance, parsed: ServeArgs): string {
  const lines: string[] = []
  const admin = app.rendezvous.adminAddress()
  if (admin !== undefined) lines.push(`Admin page and API: http://${formatHost(admin.address)}:${admin.port}/`)
  const metrics = metricsListenerAddress(app)
  if (metrics !== undefined && parsed.metricsPath !== false) lines.push(`Metrics: http://${formatHost(metrics.address)}:${metrics.port}${parsed.metricsPath}`)
  return lines.map(line => line + '\n').join('')
}

function adminOptions (parsed: ServeArgs, token: (() => string) | undefined, url: () => string, certificate: Certificate | undefined): RendezvousOptions['admin'] {
  if (parsed.admin === undefined || token === undefined) return undefined
  const ca = certificate?.selfSigned === true ? certificate.certPath : undefined
  const { tokenWarning: _warned, ...admin } = parsed.admin
  // The agent command as the banner's, with an absolute script path: it is pasted in another directory.
  return { ...admin, token, publicUrl: url, caFile: ca === undefined ? undefined : resolve(ca), cli: selfCommand(process.argv[1], process.cwd(), true) }
}

function publicUrl (parsed: ServeArgs, app: FastifyInstance | undefined, certificate: Certificate | undefined): string {
  const port = app === undefined ? parsed.port : boundPort(app)
  return `${certificate === undefined ? 'http' : 'https'}://${formatHost(reachableHost(parsed.host))}:${port}/`
}

function boundPort (app: FastifyInstance): number {
  return (app.server.address() as AddressInfo).port
}

// Where the peer listener is bound, and the address other nodes are told when --advertise names another.
function peerLink (peer: NonNullable<FastifyInstance['rendezvous']['cluster']>): string {
  const advertised = peer.peerAddress ?? '?'
  return peer.peerListening === undefined || peer.peerListening === advertised ? advertised : `${peer.peerListening}, advertised as ${advertised}`
}

function banner (parsed: ServeArgs, port: number, certificate: Certificate | undefined, peer: FastifyInstance['rendezvous']['cluster']): string {
  const scheme = certificate === undefined ? 'http' : 'https'
  const listening = `${scheme}://${formatHost(parsed.host)}:${port}/`
  const url = `${scheme}://${formatHost(reachableHost(parsed.host))}:${port}/`
  const ca = certificate?.selfSigned === true ? certificate.certPath : undefined
  const cli = selfCommand()
  const lines = [`rendezvous listening on ${listening}`]
  if (peer !== undefined) lines.push(`  cluster node ${peer.nodeId}, peer link on ${peerLink(peer)} (${parsed.cluster?.peerTls === undefined ? 'plain TCP' : 'mutual TLS'})`)
  if (certificate !== undefined) {
    const origin = certificate.regenerated !== undefined
      ? `self-signed, generated again now: ${certificate.regenerated}; agents need this new file as --ca`
      : certificate.generated ? 'self-signed, generated now' : certificate.selfSigned ? 'self-signed' : 'given'
    lines.push(`  certificate  ${certificate.certPath} (${origin})`)
    if (certificate.names.length > 0) lines.push(`  names        ${certificate.names.join(', ')}`)
    lines.push(`  SHA-256 fingerprint  ${certificate.fingerprint}`)
  }
  lines.push(
    '',
    'Next steps:',
    '  1. Provision an ID for a hidden server; this prints its ID and secret:',
    `       ${cli} ids add ${parsed.cluster === undefined ? `--data-dir ${shellQuote(parsed.dataDir)}` : `--redis ${shellQuote(redactUrl(parsed.cluster.redis))}`}`,
    '  2. Next to the hidden server, run the agent (PORT is where the hidden server listens):',
    `       ${cli} agent --server ${url} --id ID --secret SECRET --to http://127.0.0.1:PORT${ca === undefined ? '' : ` --ca ${shellQuote(ca)}`}`,
    '  3. Reach the hidden server as a mobile client:',
    `       curl --digest -u ID:x${ca === undefined ? '' : ` --cacert ${shellQuote(ca)}`} ${url}`,
    ''
  )
  return lines.join('\n') + '\n'
}

// A wildcard address is where the server listens, not where anyone can connect to.
function reachableHost (host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1'
  if (host === '::' || host === '0:0:0:0:0:0:0:0') return '::1'
  return host
}
