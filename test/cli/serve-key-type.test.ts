import { X509Certificate } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { get } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TLSSocket } from 'node:tls'
import t from 'tap'
import { generate } from 'selfsigned'
import { buildProblem, runCli, startCli, type Proc } from '../helpers/cli'
import { until } from '../helpers/until'

// --tls-cert and --tls-key of different key types (an RSA certificate, an EC key): OpenSSL loads them without a word, and every handshake would fail.

type Test = Parameters<Parameters<typeof t.test>[0]>[0]
interface Pair { cert: string, key: string, fingerprint: string }

async function makePair (keyType: 'rsa' | 'ec'): Promise<Pair> {
  const notBeforeDate = new Date(Date.now() - 60_000)
  const pems = await generate([{ name: 'commonName', value: `rendezvous ${keyType}` }], {
    keyType,
    ...(keyType === 'rsa' ? { keySize: 2048 } : { curve: 'P-256' }),
    algorithm: 'sha256',
    notBeforeDate,
    notAfterDate: new Date(notBeforeDate.getTime() + 86_400_000),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }] }
    ]
  } as Parameters<typeof generate>[1])
  return { cert: pems.cert, key: pems.private, fingerprint: new X509Certificate(pems.cert).fingerprint256 }
}

function tempDir (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'rendezvous-key-type-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** GET /healthz over a handshake that verifies the server against `trusted` only: the status and the certificate presented. */
async function healthz (port: number, trusted: Pair): Promise<{ status: number, fingerprint: string }> {
  return await new Promise((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port, path: '/healthz', ca: trusted.cert, servername: 'localhost', agent: false }, res => {
      const fingerprint = (res.socket as TLSSocket).getPeerCertificate().fingerprint256
      res.resume().on('end', () => resolve({ status: res.statusCode ?? 0, fingerprint }))
    })
    req.on('error', reject)
  })
}

/** The first log line after `mark` characters of stdout that matches `pattern`, parsed. */
async function logAfter (proc: Proc, mark: number, pattern: RegExp, timeoutMs = 15_000): Promise<Record<string, unknown>> {
  const line = (): string | undefined => proc.stdout().slice(mark).split('\n').find(l => pattern.test(l))
  await until(() => line() !== undefined || proc.done(), timeoutMs, `a log line matching ${String(pattern)}`)
  const found = line()
  if (found === undefined) throw new Error(`no log line matching ${String(pattern)}: ${proc.output()}`)
  return JSON.parse(found)
}

t.test('serve refuses a certificate and a key of different types: one line naming both files, exit 1, no banner', async t => {
  const problem = buildProblem(t)
  if (problem !== undefined) return t.fail(problem)
  const dir = tempDir(t)
  const [rsa, ec] = await Promise.all([makePair('rsa'), makePair('ec')])
  const files = { rsaCert: join(dir, 'rsa-cert.pem'), rsaKey: join(dir, 'rsa-key.pem'), ecCert: join(dir, 'ec-cert.pem'), ecKey: join(dir, 'ec-key.pem') }
  writeFileSync(files.rsaCert, rsa.cert)
  writeFileSync(files.rsaKey, rsa.key, { mode: 0o600 })
  writeFileSync(files.ecCert, ec.cert)
  writeFileSync(files.ecKey, ec.key, { mode: 0o600 })
  for (const [cert, key] of [[files.ecCert, files.rsaKey], [files.rsaCert, files.ecKey]]) {
    const run = await runCli(t, ['serve', '--port', '0', '--data-dir', join(dir, 'data'), '--tls-cert', cert, '--tls-key', key])
    t.equal(run.code, 1, `${cert} with ${key}: exit 1`)
    t.equal(run.stderr, `rendezvous: --tls-key ${key} is not the key of --tls-cert ${cert}\n`, 'one line naming both files')
    t.notMatch(run.stdout, /fingerprint|listening/i, 'no banner: it never served')
  }
})

t.test('a renewal from RSA to EC, certificate written first: the old pair serves until the key arrives, then the new one', async t => {
  const problem = buildProblem(t)
  if (problem !== undefined) return t.fail(problem)
  const dir = tempDir(t)
  const [rsa, ec] = await Promise.all([makePair('rsa'), makePair('ec')])
  const cert = join(dir, 'fullchain.pem')
  const key = join(dir, 'privkey.pem')
  writeFileSync(cert, rsa.cert)
  writeFileSync(key, rsa.key, { mode: 0o600 })
  const serve = startCli(t, ['serve', '--port', '0', '--data-dir', join(dir, 'data'), '--tls-cert', cert, '--tls-key', key])
  const port = Number((await serve.waitFor(/listening on https:\/\/127\.0\.0\.1:(\d+)\//))[1])
  t.same(await healthz(port, rsa), { status: 200, fingerprint: rsa.fingerprint }, 'before: the RSA pair')

  const mismatch = { error: `--tls-key ${key} is not the key of --tls-cert ${cert}` }
  let mark = serve.stdout().length
  writeFileSync(cert, ec.cert)
  t.match(await logAfter(serve, mark, /certificate reload/), { level: 40, why: 'file changed', msg: 'certificate reload failed; serving the current one', ...mismatch }, 'the file watch: a warning naming both files')
  t.same(await healthz(port, rsa), { status: 200, fingerprint: rsa.fingerprint }, 'during: the RSA pair still serves')
  mark = serve.stdout().length
  serve.child.kill('SIGHUP')
  t.match(await logAfter(serve, mark, /certificate reload/), { level: 40, why: 'SIGHUP', ...mismatch }, 'SIGHUP: the same warning, not "unchanged"')
  t.same(await healthz(port, rsa), { status: 200, fingerprint: rsa.fingerprint }, 'and the RSA pair still serves')

  mark = serve.stdout().length
  writeFileSync(key, ec.key)
  t.match(await logAfter(serve, mark, /certificate (reload|unchanged)/), { level: 30, why: 'file changed', msg: 'certificate reloaded', fingerprint: ec.fingerprint }, 'the key arrives: the file watch loads the new pair')
  t.same(await healthz(port, ec), { status: 200, fingerprint: ec.fingerprint }, 'after: the EC pair')
  mark = serve.stdout().length
  serve.child.kill('SIGHUP')
  t.match(await logAfter(serve, mark, /certificate (reload|unchanged)/), { why: 'SIGHUP', msg: 'certificate unchanged', fingerprint: ec.fingerprint }, 'now both files are the ones served')

  // Back to RSA on SIGHUP alone, read before the file watch sees the files.
  writeFileSync(cert, rsa.cert)
  mark = serve.stdout().length
  serve.child.kill('SIGHUP')
  t.match(await logAfter(serve, mark, /certificate reload/), { level: 40, why: 'SIGHUP', ...mismatch })
  t.same(await healthz(port, ec), { status: 200, fingerprint: ec.fingerprint }, 'the EC pair still serves')
  writeFileSync(key, rsa.key)
  mark = serve.stdout().length
  serve.child.kill('SIGHUP')
  t.match(await logAfter(serve, mark, /certificate (reload|unchanged)/), { why: 'SIGHUP', msg: 'certificate reloaded', fingerprint: rsa.fingerprint }, 'SIGHUP loads the pair once the key arrived')
  t.same(await healthz(port, rsa), { status: 200, fingerprint: rsa.fingerprint }, 'the RSA pair again')
  t.equal((await serve.stop('SIGTERM')).code, 0, 'still running, and closes cleanly')
})
