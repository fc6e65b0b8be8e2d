import { X509Certificate } from 'node:crypto'
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { reloadHarness } from '../helpers/certificate-reload'
import { loadCertificate } from '../../lib/server/certificate'
import { datedPair, days, minutes } from '../helpers/dated-certificate'

// A certificate outside its dates is refused at start and on reload, like a key that is not its own.

type Test = Parameters<Parameters<typeof t.test>[0]>[0]

const ISO = '\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ'

function tempDir (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'rendezvous-cert-dates-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

const given = (dir: string, pair: { certPath: string, keyPath: string }) => ({
  dataDir: join(dir, 'data'),
  host: '127.0.0.1',
  certFile: pair.certPath,
  keyFile: pair.keyPath,
  certLabel: `--tls-cert ${pair.certPath}`,
  keyLabel: `--tls-key ${pair.keyPath}`
})

t.test('an expired certificate is refused in one line naming the file and its dates', async t => {
  const dir = tempDir(t)
  const pair = await datedPair(dir, 'expired', days(-30), days(-1))
  const err = await loadCertificate(given(dir, pair)).then(() => undefined, (e: Error & { code?: string }) => e)
  t.equal(err?.code, 'FST_RENDEZVOUS_CERTIFICATE')
  t.match(err?.message, new RegExp(`^--tls-cert ${pair.certPath} has expired: valid from ${ISO} to ${ISO}, and this host's clock says ${ISO}$`))
  const x509 = new X509Certificate(pair.cert)
  t.match(err?.message, new Date(Date.parse(x509.validTo)).toISOString().slice(0, 19), 'the notAfter it names is the certificate\'s')
  t.notMatch(err?.message, /\n/, 'one line')
})

t.test('a certificate valid only from later than five minutes ahead is refused; one a little ahead is clock skew, and served', async t => {
  const dir = tempDir(t)
  const future = await datedPair(dir, 'future', days(2), days(30))
  await t.rejects(loadCertificate(given(dir, future)), {
    code: 'FST_RENDEZVOUS_CERTIFICATE',
    message: new RegExp(`^--tls-cert ${future.certPath} is not valid yet: valid from ${ISO} to ${ISO}, and this host's clock says ${ISO}; check the clocks, or wait$`)
  })
  const sixMinutes = await datedPair(dir, 'six', minutes(6), days(30))
  await t.rejects(loadCertificate(given(dir, sixMinutes)), { message: /is not valid yet/ })
  const skewed = await datedPair(dir, 'skewed', minutes(3), days(30))
  const cert = await loadCertificate(given(dir, skewed))
  t.same(cert.warnings, [])
  t.equal(cert.fingerprint, new X509Certificate(skewed.cert).fingerprint256)
})

t.test('the data dir\'s expired self-signed certificate is still generated again, not refused', async t => {
  const dir = tempDir(t)
  const dataDir = join(dir, 'data')
  mkdirSync(join(dataDir, 'tls'), { recursive: true, mode: 0o700 })
  const old = await datedPair(dir, 'old', days(-30), days(-1))
  copyFileSync(old.certPath, join(dataDir, 'tls', 'cert.pem'))
  copyFileSync(old.keyPath, join(dataDir, 'tls', 'key.pem'))
  const cert = await loadCertificate({ dataDir, host: '127.0.0.1' })
  t.match(cert.regenerated, /^it expired on /)
  t.ok(cert.generated && cert.selfSigned)
  const x509 = new X509Certificate(cert.cert)
  t.ok(Date.parse(x509.validFrom) <= Date.now() && Date.parse(x509.validTo) > Date.now(), 'the new one is in its dates')
  await cert.save?.()
  t.equal(new X509Certificate(readFileSync(join(dataDir, 'tls', 'cert.pem'))).fingerprint256, cert.fingerprint)
})

t.test('on reload, a pair out of its dates is refused with a warning and the current pair stays', async t => {
  const dir = tempDir(t)
  const live = await datedPair(dir, 'live', days(-1), days(30))
  const certPath = join(dir, 'fullchain.pem')
  const keyPath = join(dir, 'privkey.pem')
  copyFileSync(live.certPath, certPath)
  copyFileSync(live.keyPath, keyPath)
  const req = given(dir, { certPath, keyPath })
  const current = await loadCertificate(req)
  const { lines, results, reload, presented } = await reloadHarness(t, req, current)

  for (const [name, from, to, why] of [
    ['expired', days(-30), days(-1), /has expired/],
    ['future', days(1), days(30), /is not valid yet/]
  ] as Array<[string, Date, Date, RegExp]>) {
    const pair = await datedPair(dir, name, from, to)
    // Key first, then certificate, both matching: only the dates are wrong.
    copyFileSync(pair.keyPath, keyPath)
    copyFileSync(pair.certPath, certPath)
    await reload()
    t.equal(results.at(-1), 'failed', `${name}: counted as failed`)
    t.same(lines.map(l => [l.level, l.msg]), [['warn', 'certificate reload failed; serving the current one']], `${name}: one warning`)
    t.match(lines[0]?.fields, { why: 'test', error: why }, `${name}: it says why`)
    t.equal(await presented(), current.fingerprint, `${name}: the current certificate is still presented`)
  }

  const renewed = await datedPair(dir, 'renewed', days(-1), days(60))
  copyFileSync(renewed.keyPath, keyPath)
  copyFileSync(renewed.certPath, certPath)
  await reload()
  t.equal(results.at(-1), 'reloaded', 'a renewal in its dates still takes')
  t.equal(await presented(), new X509Certificate(renewed.cert).fingerprint256)
})
