import { X509Certificate } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { reloadHarness } from '../helpers/certificate-reload'
import { loadCertificate, type CertificateRequest } from '../../lib/server/certificate'

/*
 * The data dir's self-signed certificate is generated at start only. A
 * reload (SIGHUP) that found it replaced by another server on the same data
 * dir, with other names, used to generate yet another pair and serve it:
 * a new fingerprint, announced by nothing but an info line, and every
 * agent that pinned the old one locked out.
 */

const onDisk = (dataDir: string): string => new X509Certificate(readFileSync(join(dataDir, 'tls', 'cert.pem'))).fingerprint256

t.test('a reload serves the data dir\'s pair as it is, and never generates one', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'rendezvous-reload-dd-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const dataDir = join(dir, 'data')
  const req: CertificateRequest = { dataDir, host: '127.0.0.1' }
  const current = await loadCertificate(req)
  t.ok(current.generated, 'the first start generates the pair')
  const { lines, results, reload, presented } = await reloadHarness(t, req, current, 'SIGHUP')

  // Another server started on the same data dir with one more name: its start replaces the pair, as documented.
  const other = await loadCertificate({ dataDir, host: '127.0.0.1', names: ['other.example'] })
  t.match(other.regenerated, /it did not name other\.example/)
  await other.save?.()
  await reload()
  t.equal(results.at(-1), 'failed', 'counted as a failed reload')
  t.same(lines.map(l => [l.level, l.msg]), [['error', 'certificate reload failed; serving the current one']])
  t.match(lines[0]?.fields.error, /cert\.pem no longer fits this server: its names changed\. Another server on this data dir with other --host or --tls-name names replaced it\? Give every server on one data dir the same names; a reload does not generate a certificate/)
  t.equal(await presented(), current.fingerprint, 'the pinned certificate is still presented')
  t.equal(onDisk(dataDir), other.fingerprint, 'and the other server\'s pair is left on disk')

  rmSync(join(dataDir, 'tls'), { recursive: true })
  await reload()
  t.equal(results.at(-1), 'failed')
  t.match(lines[0]?.fields.error, /tls no longer holds cert\.pem and key\.pem; a reload does not generate a certificate \(agents pin its fingerprint\): restart to generate one/)
  t.equal(await presented(), current.fingerprint)

  // A pair for this server's own names, put there by another start: served, as any renewed pair is.
  const fitting = await loadCertificate(req)
  t.ok(fitting.generated)
  await reload()
  t.equal(results.at(-1), 'reloaded')
  t.equal(await presented(), fitting.fingerprint, 'a pair that fits is taken up')
  t.not(fitting.fingerprint, current.fingerprint)
})
