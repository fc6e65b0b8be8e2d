import { mkdtemp, rm } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { RendezvousAgent } from '../agent/agent'
import type { IdentityRecord } from '../registry/registry'
import { buildServer, closeDeadline, closeServer } from '../server/app'
import { loadCertificate, type Certificate } from '../server/certificate'
import type { LogLevel, ServeOptions } from '../server/serve-options'
import { createDemoSite, type DemoSite } from './site'

/*
 * The whole loop of the rendezvous in one process, on loopback: the server,
 * an ID provisioned for the occasion, an agent parking connections for it,
 * and a small web page behind the agent that a browser can open.
 */

/** Where the demo listens. It is a loopback demo: a browser on this machine is the mobile client. */
export const DEMO_HOST = '127.0.0.1'

export interface DemoOptions {
  /** 0 picks a free port. */
  port: number
  /** Where the ID and the certificate go. Default: a fresh temporary directory, removed by close(). */
  dataDir?: string
  /** The ID to serve under: reused when the data dir has it, else provisioned. Default: a fresh UUID. */
  id?: string
  logLevel?: LogLevel
  /** Where the server's log lines go. Default: process.stderr. */
  logStream?: NodeJS.WritableStream
  prettyLogs?: boolean
  /** Connections the agent keeps parked. Default 6, what a browser opens to one host. */
  pool?: number
}

export interface Demo {
  /** What to open in a browser: `https://127.0.0.1:PORT/`. */
  url: string
  port: number
  /** The user name a mobile client gives. */
  id: string
  /** Whether this start provisioned the ID (false when --id named one the data dir had). */
  provisioned: boolean
  dataDir: string
  /** True when dataDir is a temporary directory that close() removes. */
  temporary: boolean
  certificate: Certificate
  app: FastifyInstance
  agent: RendezvousAgent
  site: DemoSite
  /**
   * Closes the agent, the page and the server, then removes a temporary data
   * dir. Resolves 'closed', or 'deadline'/'forced' when connections had to be cut.
   */
  close: (force?: Promise<unknown>) => Promise<'closed' | 'deadline' | 'forced'>
}

const CLOSE_GRACE = 1_000

export async function startDemo (opts: DemoOptions): Promise<Demo> {
  const temporary = opts.dataDir === undefined
  const dataDir = opts.dataDir ?? await mkdtemp(join(tmpdir(), 'rendezvous-demo-'))
  // Undone in reverse order when a later step fails, so that a failed start leaves nothing running.
  const undo: Array<() => Promise<unknown>> = []
  if (temporary) undo.push(async () => await rm(dataDir, { recursive: true, force: true }))
  try {
    const certificate = await loadCertificate({ dataDir, host: DEMO_HOST })
    const options: ServeOptions = {
      dataDir,
      tls: { cert: certificate.cert, key: certificate.key },
      waitTimeout: 10_000,
      metricsPath: '/metrics',
      logLevel: opts.logLevel ?? 'warn',
      logStream: opts.logStream ?? process.stderr,
      prettyLogs: opts.prettyLogs,
      closeGracePeriod: CLOSE_GRACE
    }
    const app = await buildServer(options)
    undo.push(async () => await closeServer(app, closeDeadline(options)))
    await app.listen({ host: DEMO_HOST, port: opts.port })
    const port = (app.server.address() as AddressInfo).port
    const url = `https://${DEMO_HOST}:${port}/`

    const { record, provisioned } = await provision(app, opts.id)
    const site = createDemoSite({ id: record.id })
    undo.push(site.close)

    const agent = new RendezvousAgent({
      url,
      id: record.id,
      secret: record.secret,
      server: site.server,
      pool: opts.pool ?? 6,
      // The server's own certificate is the CA to trust when it is self-signed; otherwise the system's roots are.
      ca: certificate.selfSigned ? certificate.cert : undefined,
      closeGrace: CLOSE_GRACE
    })
    agent.on('error', (err, phase) => app.log.warn({ err, phase }, 'demo agent: %s', err.message))
    agent.on('warning', message => app.log.warn(`demo agent: ${message}`))
    undo.push(async () => await agent.close())
    await agent.start()

    let closing: Promise<'closed' | 'deadline' | 'forced'> | undefined
    const close = async (force?: Promise<unknown>): Promise<'closed' | 'deadline' | 'forced'> => {
      // Parked connections first, so that nothing new arrives; then the page, whose sockets are the hidden ends of the relays.
      await agent.close()
      await site.close()
      const outcome = await closeServer(app, closeDeadline(options), force)
      if (temporary) await rm(dataDir, { recursive: true, force: true })
      return outcome
    }
    return {
      url,
      port,
      id: record.id,
      provisioned,
      dataDir,
      temporary,
      certificate,
      app,
      agent,
      site,
      close: (force) => { closing ??= close(force); return closing }
    }
  } catch (err) {
    for (const step of undo.reverse()) await step().catch(() => {})
    throw err
  }
}

async function provision (app: FastifyInstance, id: string | undefined): Promise<{ record: IdentityRecord, provisioned: boolean }> {
  const registry = app.rendezvous.registry
  const existing = id === undefined ? undefined : registry.get(id)
  if (existing !== undefined) return { record: existing, provisioned: false }
  return { record: await registry.add(id === undefined ? {} : { id }), provisioned: true }
}
