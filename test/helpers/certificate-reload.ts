import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import tls from 'node:tls'
import type { FastifyBaseLogger } from 'fastify'
import type { Certificate, CertificateRequest } from '../../lib/server/certificate'
import { reloadCertificate } from '../../lib/server/certificate-reload'
import type { ReloadResult } from '../../lib/server/tls-metrics'

export interface Logged { level: string, fields: Record<string, unknown>, msg: string }

type Test = { teardown: (fn: () => unknown) => void }

/** A TLS server presenting `current`, its reloader, and what each reload logged and resulted in. */
export interface ReloadHarness {
  port: number
  lines: Logged[]
  results: ReloadResult[]
  /** Reloads now, and resolves once that reload is settled; `lines` then holds its lines only. */
  reload: () => Promise<void>
  /** The SHA-256 fingerprint a new client is presented. */
  presented: () => Promise<string>
}

export async function reloadHarness (t: Test, req: CertificateRequest, current: Certificate, why = 'test'): Promise<ReloadHarness> {
  const server = tls.createServer({ cert: current.cert, key: current.key }, socket => socket.end())
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  const port = (server.address() as AddressInfo).port
  const results: ReloadResult[] = []
  const lines: Logged[] = []
  const at = (level: string) => (fields: Record<string, unknown> | string, msg?: string) => {
    lines.push(typeof fields === 'string' ? { level, fields: {}, msg: fields } : { level, fields, msg: msg ?? '' })
  }
  const log = { info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug') } as unknown as FastifyBaseLogger
  let settled: () => void = () => {}
  const reloader = reloadCertificate(server, req, current, log, { interval: 60_000, onReload: result => { results.push(result); settled() } })
  t.teardown(() => reloader.stop())
  return {
    port,
    lines,
    results,
    reload: async () => {
      const done = new Promise<void>(resolve => { settled = resolve })
      lines.length = 0
      reloader.reload(why)
      await done
    },
    presented: async () => {
      const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false })
      await once(socket, 'secureConnect')
      const fingerprint = socket.getPeerCertificate().fingerprint256
      socket.destroy()
      return fingerprint
    }
  }
}
