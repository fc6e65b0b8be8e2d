import { X509Certificate } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { PeerTlsOptions } from '../cluster/options'
import { peerTlsOptions } from '../server/app'
import { logRefusal, type CertificateReloader, type ReloadOptions } from '../server/certificate-reload'
import { watchFiles } from '../server/file-watch'
import type { PeerTlsMaterial } from '../server/serve-options'
import { peerTlsArgs, type PeerTlsValues } from './peer-tls-args'

/** What `serve` read the peer link's TLS material from, to read it again. */
export interface PeerTlsSource {
  values: PeerTlsValues & { cert: string, key: string, ca: string }
  /** The host other nodes dial, which the certificate must name unless --peer-tls-name is given. */
  verifyHost: string
}

/**
 * Reads --peer-tls-cert, --peer-tls-key and --peer-ca again on SIGHUP and
 * when one of them changes, as reloadCertificate does for --tls-cert: with
 * the checks of the start (peerTlsArgs), and only if they all pass, hands the
 * new material to the cluster node. Peer links already open keep their
 * session; a failed check is logged and the current material stays.
 */
export function reloadPeerTls (setPeerTls: (tls: PeerTlsOptions) => void, source: PeerTlsSource, current: PeerTlsMaterial, log: FastifyBaseLogger, opts: ReloadOptions = {}): CertificateReloader {
  let material = current
  const onReload = opts.onReload ?? (() => {})
  const reload = (why: string): void => {
    try {
      const next = peerTlsArgs(source.values, source.verifyHost)!
      const fingerprint = new X509Certificate(next.cert).fingerprint256
      if (next.cert.equals(material.cert) && next.key.equals(material.key) && next.ca.equals(material.ca)) {
        log.info({ why, fingerprint }, 'peer certificate unchanged')
        onReload('unchanged')
        return
      }
      setPeerTls(peerTlsOptions(next))
      material = next
      log.info({ why, fingerprint, certificate: source.values.cert, ca: source.values.ca }, 'peer certificate reloaded')
      onReload('reloaded', next.cert)
    } catch (err) {
      logRefusal(log, 'peer certificate reload failed; the peer link keeps the current one', why, err)
      onReload('failed')
    }
  }
  const { cert, key, ca } = source.values
  const stop = watchFiles([cert, key, ca], () => reload('file changed'), opts)
  return { reload, stop }
}
