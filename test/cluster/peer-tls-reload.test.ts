import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect as tlsConnect } from 'node:tls'
import t, { type Test } from 'tap'
import type { Proc } from '../helpers/cli'
import { startAgent, type Credentials, type Rendezvous } from '../helpers/e2e'
import { blobBytes, sha256, startHiddenSite, type HiddenSite } from '../helpers/hidden-site'
import { sample } from '../helpers/prometheus'
import { until } from '../helpers/until'
import { WireClient, statusOf } from '../helpers/wire'
import { addClusterId, curl, curlMissing, scrapeMetrics, startTlsNode } from './cli-helpers'
import { makeCa, makeNodeCert, writePeerFiles, type PeerFiles, type TestCa } from './peer-certs'
import { redisMissing, startRedis } from './redis-server'

// `serve` reloads --peer-tls-cert, --peer-tls-key and --peer-ca on SIGHUP and when they change (docs/cluster.md, Renewing the peer certificates).

const skip = redisMissing() ?? curlMissing() ?? false

const fingerprintOf = (pem: string): string => new X509Certificate(pem).fingerprint256
const notAfter = (pem: string): number => Date.parse(new X509Certificate(pem).validTo) / 1000
const EXPIRY = 'rendezvous_tls_certificate_expiry_timestamp_seconds{listener="peer"}'
const reloads = (result: string): string => `rendezvous_tls_reloads_total{listener="peer",result="${result}"}`

/** The fingerprint of the certificate a peer listener presents to a node that dials it with `as` (its certificate, key and CA). */
async function presented (port: number, as: PeerFiles): Promise<string> {
  return await new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca: readFileSync(as.ca), cert: readFileSync(as.cert), key: readFileSync(as.key) })
    socket.once('secureConnect', () => {
      resolve(socket.getPeerCertificate().fingerprint256)
      socket.destroy()
    })
    socket.once('error', reject)
  })
}

/** The first line matching `pattern` that the process printed after `mark` characters of stdout. */
async function lineAfter (proc: Proc, mark: number, pattern: RegExp, timeoutMs = 15_000): Promise<string> {
  const line = (): string | undefined => proc.stdout().slice(mark).split('\n').find(l => pattern.test(l))
  await until(() => line() !== undefined || proc.done(), timeoutMs, `a line matching ${String(pattern)}`)
  return line() ?? ''
}

// Only this SIGHUP's line: a file watch may still report an earlier write after the mark, on a loaded machine.
async function hangup (proc: Proc, pattern: RegExp): Promise<string> {
  const mark = proc.stdout().length
  proc.child.kill('SIGHUP')
  return await lineAfter(proc, mark, new RegExp(`^(?=.*"why":"SIGHUP").*${pattern.source}`))
}

async function writePair (files: PeerFiles, pair: { cert: string, key: string }): Promise<void> {
  await writeFile(files.key, pair.key)
  await writeFile(files.cert, pair.cert)
}

const bundle = (...cas: TestCa[]): TestCa => ({ cert: cas.map(ca => ca.cert.trim()).join('\n') + '\n', key: '' })

async function download (t: Test, scratch: string, via: Rendezvous, creds: Credentials, seed: string): Promise<void> {
  const got = await curl(t, scratch, via, creds, `/blob?size=${256 * 1024 + 5}&seed=${seed}`)
  t.equal(got.status, 200, got.stderr)
  t.equal(sha256(got.body), sha256(blobBytes(256 * 1024 + 5, seed)), `byte-exact (${seed})`)
}

/** A POST whose head and first half go through `via` now; `finish` sends the rest and checks the echo. */
async function startUpload (via: Rendezvous, creds: Credentials, site: HiddenSite): Promise<{ finish: (t: Test) => Promise<void> }> {
  const body = blobBytes(64 * 1024, 'in flight')
  const socket = tlsConnect({ host: '127.0.0.1', port: via.port, ca: via.ca, servername: 'localhost' })
  const client = new WireClient(socket)
  await new Promise(resolve => socket.once('secureConnect', resolve))
  client.write(`POST /echo?n=inflight HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="${creds.id}"\r\nContent-Length: ${body.length}\r\n\r\n`)
  client.write(body.subarray(0, body.length / 2))
  await until(() => site.seen.some(r => r.url === '/echo?n=inflight'), 15_000, 'the upload at the hidden server')
  return {
    finish: async t => {
      client.write(body.subarray(body.length / 2))
      const bodyAt = (c: WireClient): number => c.received.indexOf('\r\n\r\n') + 4
      await client.until(c => bodyAt(c) >= 4 && c.received.length >= bodyAt(c) + body.length, 15_000, 'the echo')
      t.equal(statusOf(client.text), 200, client.text.slice(0, 200))
      t.equal(sha256(client.received.subarray(bodyAt(client))), sha256(body), 'the echo is byte-exact')
      client.destroy()
    }
  }
}

t.test('serve reloads the peer link\'s certificate, key and CA on SIGHUP', { skip }, async t => {
  const scratch = await mkdtemp(join(tmpdir(), 'rendezvous-peer-reload-'))
  t.teardown(async () => { await rm(scratch, { recursive: true, force: true }) })
  const [oldCa, newCa] = await Promise.all([makeCa('cluster peer CA 2025'), makeCa('cluster peer CA 2026')])
  // Valid longer than the first, so that its expiry shows which one is served.
  const renewed = await makeNodeCert(newCa, 'node a, renewed', undefined, true, 30)
  // A is the node whose files are rotated; B already trusts both CAs; C, started later, only the new one.
  const a = await writePeerFiles(scratch, 'a', await makeNodeCert(oldCa, 'node a'), oldCa)
  const b = await writePeerFiles(scratch, 'b', await makeNodeCert(oldCa, 'node b'), bundle(oldCa, newCa))
  const c = await writePeerFiles(scratch, 'c', await makeNodeCert(newCa, 'node c'), newCa)
  const redis = await startRedis(t)
  const site = await startHiddenSite(t)
  const [nodeA, nodeB] = await Promise.all([startTlsNode(t, redis.url, a), startTlsNode(t, redis.url, b)])
  const onA = await addClusterId(t, redis.url)
  await startAgent(t, nodeA.rv, onA, site.url, { pool: 2, parked: 2 })
  t.equal(await presented(nodeA.peerPort, b), fingerprintOf(readFileSync(a.cert, 'utf8')), 'A presents its first certificate')
  const first = readFileSync(a.cert, 'utf8')
  t.equal(sample(await scrapeMetrics(nodeA.rv), EXPIRY), notAfter(first), 'and its metrics say when that one expires')
  await download(t, scratch, nodeB.rv, onA, 'before')

  t.test('new peer links use the new files, both ways; one already spliced keeps its session', async t => {
    const upload = await startUpload(nodeB.rv, onA, site)
    await writePair(a, renewed)
    await writeFile(a.ca, bundle(oldCa, newCa).cert)
    const line = await hangup(nodeA.rv.proc, /peer certificate reloaded/)
    t.match(JSON.parse(line), { why: 'SIGHUP', fingerprint: fingerprintOf(renewed.cert), certificate: a.cert, ca: a.ca })
    t.equal(await presented(nodeA.peerPort, b), fingerprintOf(renewed.cert), 'the peer listener presents the new certificate')
    const text = await scrapeMetrics(nodeA.rv)
    t.equal(sample(text, EXPIRY), notAfter(renewed.cert), 'the expiry follows it')
    t.not(notAfter(renewed.cert), notAfter(first))
    t.equal(sample(text, reloads('reloaded')), 1, 'one reload counted')
    await upload.finish(t)
    await download(t, scratch, nodeB.rv, onA, 'B-to-A-after')
    // C trusts only the new CA and has a certificate only A's new CA bundle accepts: both ends of A's link must be new.
    const nodeC = await startTlsNode(t, redis.url, c)
    const onC = await addClusterId(t, redis.url)
    await startAgent(t, nodeC.rv, onC, site.url, { pool: 1, parked: 1 })
    await download(t, scratch, nodeC.rv, onA, 'C-to-A')
    await download(t, scratch, nodeA.rv, onC, 'A-to-C')
  })

  t.test('a key that is not the certificate\'s is refused, in one line naming the files; the current material stays', async t => {
    await writeFile(a.key, readFileSync(b.key))
    const line = await hangup(nodeA.rv.proc, /peer certificate reload failed/)
    // A warning: a renewal looks like this until its last file is written.
    t.match(JSON.parse(line), { level: 40, why: 'SIGHUP', error: `--peer-tls-key ${a.key} is not the key of --peer-tls-cert ${a.cert}` })
    t.notMatch(line, /PRIVATE KEY|BEGIN/, 'no key material in the log')
    t.equal(await presented(nodeA.peerPort, b), fingerprintOf(renewed.cert), 'still the renewed certificate')
    const text = await scrapeMetrics(nodeA.rv)
    t.ok((sample(text, reloads('failed')) ?? 0) >= 1, 'the failed reload is counted')
    t.equal(sample(text, EXPIRY), notAfter(renewed.cert), 'and the expiry stays')
    await download(t, scratch, nodeB.rv, onA, 'after-bad-key')
    t.equal(nodeA.rv.proc.done(), false, 'A keeps running')
  })

  t.test('a certificate without the host the other nodes dial is refused; the current material stays', async t => {
    await writePair(a, await makeNodeCert(newCa, 'node a, misnamed', 'elsewhere.test', false))
    const line = await hangup(nodeA.rv.proc, /does not name/)
    t.match(JSON.parse(line), { level: 50, msg: /peer certificate reload failed/, error: `--peer-tls-cert ${a.cert} does not name 127.0.0.1, the host other nodes dial (--advertise); add it to the certificate or give --peer-tls-name` })
    t.equal(await presented(nodeA.peerPort, b), fingerprintOf(renewed.cert), 'still the renewed certificate')
    await download(t, scratch, nodeB.rv, onA, 'after-misnamed')
  })

  t.test('a renewal to an RSA pair, certificate written before the key: the current pair serves until the key arrives', async t => {
    const rsaCa = await makeCa('cluster peer CA, RSA', 'rsa')
    const rsa = await makeNodeCert(rsaCa, 'node a, RSA', undefined, true, 1, 'rsa')
    // B must trust the new CA before A presents the new certificate, as in any change of CA.
    await writeFile(b.ca, bundle(oldCa, newCa, rsaCa).cert)
    await hangup(nodeB.rv.proc, /peer certificate reloaded/)
    await writeFile(a.ca, bundle(oldCa, newCa, rsaCa).cert)
    await writeFile(a.cert, rsa.cert)
    const line = await hangup(nodeA.rv.proc, /peer certificate (reload|unchanged)/)
    t.match(JSON.parse(line), { level: 40, why: 'SIGHUP', error: `--peer-tls-key ${a.key} is not the key of --peer-tls-cert ${a.cert}` }, 'an EC key with the RSA certificate: a warning')
    t.equal(await presented(nodeA.peerPort, b), fingerprintOf(renewed.cert), 'during: still the renewed EC certificate')
    await download(t, scratch, nodeB.rv, onA, 'rsa-during')
    const mark = nodeA.rv.proc.stdout().length
    await writeFile(a.key, rsa.key)
    const loaded = await lineAfter(nodeA.rv.proc, mark, /"why":"file changed"[^\n]*peer certificate reloaded/)
    t.match(JSON.parse(loaded), { fingerprint: fingerprintOf(rsa.cert) }, 'the key arrives: the file watch loads the RSA pair')
    t.equal(await presented(nodeA.peerPort, b), fingerprintOf(rsa.cert), 'after: the RSA certificate')
    await download(t, scratch, nodeB.rv, onA, 'rsa-after')
    const again = await hangup(nodeA.rv.proc, /peer certificate (reload|unchanged)/)
    t.match(JSON.parse(again), { why: 'SIGHUP', msg: 'peer certificate unchanged' })
  })

  t.test('a change to the files is enough, without SIGHUP', async t => {
    const again = await makeNodeCert(oldCa, 'node a, third')
    await writePair(a, again)
    // One handshake every 200 ms rather than every 10 ms: the files are polled every 2 s.
    const settled = async (): Promise<boolean> => await new Promise(resolve => setTimeout(resolve, 200)).then(async () => await presented(nodeA.peerPort, b) === fingerprintOf(again.cert))
    await until(settled, 20_000, 'the certificate written last')
    t.pass('the peer listener presents the certificate written last')
    await download(t, scratch, nodeB.rv, onA, 'after-watch')
  })
})
