import { unwatchFile, watchFile, type Stats } from 'node:fs'
import type { Server as TlsServer } from 'node:tls'
import type { FastifyBaseLogger } from 'fastify'
import { loadCertificate, type Certificate, type CertificateRequest } from './certificate'

export interface ReloadOptions {
  /** How often the certificate and key files are checked for a change, in ms. */
  interval?: number
  /** How long to wait after a change before reading, so that a renewal writing both files is seen whole, in ms. */
  settle?: number
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
  let timer: NodeJS.Timeout | undefined
  let running = Promise.resolve()

  const reload = (why: string): void => {
    running = running.then(async () => {
      try {
        const next = await loadCertificate(req)
        if (next.fingerprint === fingerprint) {
          log.info({ why, fingerprint }, 'certificate unchanged')
          return
        }
        server.setSecureContext({ cert: next.cert, key: next.key })
        fingerprint = next.fingerprint
        for (const warning of next.warnings) log.warn(warning)
        log.info({ why, fingerprint, certificate: next.certPath }, 'certificate reloaded')
      } catch (err) {
        log.error({ why, error: (err as Error).message }, 'certificate reload failed; serving the current one')
      }
    })
  }
  const later = (): void => {
    clearTimeout(timer)
    timer = setTimeout(() => reload('file changed'), opts.settle ?? 1000)
  }

  const files = req.certFile !== undefined && req.keyFile !== undefined ? [req.certFile, req.keyFile] : []
  const onChange = (now: Stats, before: Stats): void => {
    if (now.mtimeMs !== before.mtimeMs || now.ino !== before.ino || now.size !== before.size) later()
  }
  // watchFile polls stat(), which follows symlinks: Let's Encrypt's live/ links are repointed, not rewritten.
  for (const file of files) watchFile(file, { interval: opts.interval ?? 5000, persistent: false }, onChange)

  return {
    reload,
    stop: () => {
      clearTimeout(timer)
      for (const file of files) unwatchFile(file, onChange)
    }
  }
}
