import type { Server as TlsServer } from 'node:tls'
import type { FastifyBaseLogger } from 'fastify'
import { loadCertificate, type Certificate, type CertificateRequest } from './certificate'
import { CertificateDatesError, KeyMismatchError } from './errors'
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
  let served = current
  let running = Promise.resolve()
  const onReload = opts.onReload ?? (() => {})

  const reload = (why: string): void => {
    running = running.then(async () => {
      try {
        const next = await loadCertificate({ ...req, generate: false })
        // The key too: the same certificate names the same public key, but a pair counts as served only once both files were read.
        if (next.cert.equals(served.cert) && next.key.equals(served.key)) {
          log.info({ why, fingerprint: served.fingerprint }, 'certificate unchanged')
          onReload('unchanged')
          return
        }
        server.setSecureContext({ cert: next.cert, key: next.key })
        served = next
        for (const warning of next.warnings) log.warn(warning)
        log.info({ why, fingerprint: next.fingerprint, certificate: next.certPath }, 'certificate reloaded')
        onReload('reloaded', next.cert)
      } catch (err) {
        logRefusal(log, 'certificate reload failed; serving the current one', why, err)
        onReload('failed')
      }
    })
  }
  const files = req.certFile !== undefined && req.keyFile !== undefined ? [req.certFile, req.keyFile] : []
  const stop = watchFiles(files, () => reload('file changed'), opts)
  return { reload, stop }
}

/**
 * Logs a reload that left the current pair in service. A key that is not the
 * certificate's is what a renewal looks like while one of its files is
 * written and the other not yet, which the next change or SIGHUP clears; a
 * certificate out of its dates leaves the current, still good, one serving:
 * both are warnings. Anything else is an error.
 */
export function logRefusal (log: FastifyBaseLogger, msg: string, why: string, err: unknown): void {
  // By constructor: @fastify/error's instanceof goes by code, which every certificate error shares.
  const warning = [err, (err as Error).cause].some(e => (e as Error | undefined)?.constructor === KeyMismatchError || (e as Error | undefined)?.constructor === CertificateDatesError)
  log[warning ? 'warn' : 'error']({ why, error: (err as Error).message }, msg)
}
