import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { buildServer, metricsListenerAddress } from '../../lib/server/app'
import { TOKEN } from '../admin/helpers'

interface Teardown { teardown: (fn: () => unknown) => void }

export interface LoggedServe {
  app: FastifyInstance
  /** The public, admin and metrics listeners' ports. */
  port: number
  admin: number
  metrics: number
  /** The log as written, byte for byte: what a reader of the file gets. */
  bytes: () => Buffer
  lines: () => Array<Record<string, any>>
}

/**
 * serve's app with all three of its listeners (public, admin with TOKEN,
 * metrics) on loopback, plain, with its log kept: for tests of what reaches
 * the log from every listener. Closed and its data dir removed at teardown.
 */
export async function loggedServe (t: Teardown, logLevel: 'trace' | 'debug' | 'info'): Promise<LoggedServe> {
  const dataDir = mkdtempSync(join(tmpdir(), 'rv-logged-serve-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const chunks: Buffer[] = []
  const logStream = new Writable({ write (chunk, _e, cb) { chunks.push(Buffer.from(chunk)); cb() } })
  const app = await buildServer({
    dataDir,
    tls: false,
    waitTimeout: 1000,
    metricsPath: '/metrics',
    metricsListen: { host: '127.0.0.1', port: 0 },
    logLevel,
    logStream,
    plugin: { admin: { host: '127.0.0.1', port: 0, token: TOKEN } }
  })
  t.teardown(async () => { await app.close() })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const bytes = (): Buffer => Buffer.concat(chunks)
  return {
    app,
    bytes,
    lines: () => bytes().toString('utf8').split('\n').filter(l => l !== '').map(l => JSON.parse(l)),
    port: (app.server.address() as { port: number }).port,
    admin: app.rendezvous.adminAddress()?.port ?? 0,
    metrics: metricsListenerAddress(app)?.port ?? 0
  }
}
