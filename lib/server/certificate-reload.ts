import type { Server as TlsServer } from 'node:tls'
import type { FastifyBaseLogger } from 'fastify'
import { loadCertificate, type Certificate, type CertificateRequest } from './certificate'
import { watchFiles, type WatchOptions } from './file-watch'
import type { ReloadResult } from './tls-metrics'

/**
 * How often the files are checked for a change and how long a change
 * settles before they are read, in ms; and who hears what each reload did,
 * with the certificate now presented when it changed.
 */
export interface ReloadOptions extends WatchOptions {
  onReload?: (result: ReloadResult, cert?: Buffer) => void
}

export interface CertificateReloader {
  /** Reloads now (the CLI calls it on SIGHUP); `why` goes in the log. */
  reload: (why: string) => void
  /** Stops watching the files. */
  stop: () => void
}

/**
 * Swaps a renewed certificate into the running server when asked and when
 * its certificate or key file changes (a Let's Encrypt renewal). Connections
 * already open keep the old one; new ones get the new one. A pair that fails
 * to load is logged and the current one stays.
 */
export function reloadCertificate (server: TlsServer, req: CertificateRequest, current: Certificate, log: FastifyBaseLogger, opts: ReloadOptions = {}): CertificateReloader {
  let fingerprint = current.fingerprint
  let running = Promise.resolve()
  const onReload = opts.onReload ?? (() => {})

  const reload = (why: string): void => {
    running = running.then(async () => {
      try {
        const next = await loadCertificate(req)
        await next.save?.()
        if (next.fingerprint === fingerprint) {
          log.info({ why, fingerprint }, 'certificate unchanged')
          onReload('unchanged')
          return
        }
        server.setSecureContext({ cert: next.cert, key: next.key })
        fingerprint = next.fingerprint
        for (const warning of next.warnings) log.warn(warning)
        log.info({ why, fingerprint, certificate: next.certPath }, 'certificate reloaded')
        onReload('reloaded', next.cert)
      } catch (err) {
        log.error({ why, error: (err as Error).message }, 'certificate reload failed; serving the current one')
        onReload('failed')
      }
    })
  }
  const files = req.certFile !== undefined && req.keyFile !== undefined ? [req.certFile, req.keyFile] : []
  const stop = watchFiles(files, () => reload('file changed'), opts)
  return { reload, stop }
}
