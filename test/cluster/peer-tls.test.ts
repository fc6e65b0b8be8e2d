import { readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { connect as netConnect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls'
import t from 'tap'
import { requestLine } from '../../lib/cluster/peer-wire'
import { startAgent } from '../helpers/e2e'
import { blobBytes, sha256, startHiddenSite } from '../helpers/hidden-site'
import { WireClient, statusOf } from '../helpers/wire'
import { addClusterId, curl, curlMissing, scrapeMetrics as metrics, startTlsNode } from './cli-helpers'
import { makeCa, makeNodeCert, writePeerFiles } from './peer-certs'
import { redisMissing, startRedis } from './redis-server'

// `rendezvous serve --redis` nodes whose peer link is mutual TLS from the command line (docs/cluster.md, The peer link).

const skip = redisMissing() ?? curlMissing() ?? false

const counter = (text: string, name: string, outcome: string): number => {
  const m = new RegExp(`^${name}\\{outcome="${outcome}"\\} (\\d+)$`, 'm').exec(text)
  return m === null ? 0 : Number(m[1])
}

/** Connects to a peer listener, sends one peer request line and collects everything until the listener closes. */
async function probe (port: number, tls: ConnectionOptions | undefined): Promise<{ received: Buffer, error?: NodeJS.ErrnoException }> {
  const socket = tls === undefined ? netConnect({ host: '127.0.0.1', port }) : tlsConnect({ host: '127.0.0.1', port, ...tls })
  let error: NodeJS.ErrnoException | undefined
  socket.on('error', (err: NodeJS.ErrnoException) => { error ??= err })
  const wire = new WireClient(socket)
  socket.once(tls === undefined ? 'connect' : 'secureConnect', () => {
    wire.write(requestLine({ target: 'some-node', id: '00000000-0000-4000-8000-000000000000', token: 'v1.0.0.0', length: 0 }))
  })
  await wire.untilClosed(15_000)
  return { received: wire.received, error }
}

t.test('serve --redis with --peer-tls-cert, --peer-tls-key and --peer-ca', { skip }, async t => {
  const scratch = await mkdtemp(join(tmpdir(), 'rendezvous-peer-tls-'))
  t.teardown(async () => { await rm(scratch, { recursive: true, force: true }) })
  const [ca, strangerCa] = await Promise.all([makeCa('cluster peer CA'), makeCa('a CA the cluster does not use')])
  const files = {
    a: await writePeerFiles(scratch, 'a', await makeNodeCert(ca, 'node a'), ca),
    b: await writePeerFiles(scratch, 'b', await makeNodeCert(ca, 'node b'), ca),
    stranger: await writePeerFiles(scratch, 'stranger', await makeNodeCert(strangerCa, 'node c'), strangerCa)
  }
  const redis = await startRedis(t)
  const site = await startHiddenSite(t)
  const [a, b, c] = await Promise.all([startTlsNode(t, redis.url, files.a), startTlsNode(t, redis.url, files.b), startTlsNode(t, redis.url, files.stranger)])
  const creds = await addClusterId(t, redis.url)
  await startAgent(t, a.rv, creds, site.url, { pool: 2, parked: 2 })
  const trusted = { ca: readFileSync(files.a.ca) }

  t.test('a client reaches the hidden server parked on A through B, byte for byte, both ways', async t => {
    const got = await curl(t, scratch, b.rv, creds, `/blob?size=${2 * 1024 * 1024}&seed=tls`)
    t.equal(got.status, 200, got.stderr)
    t.equal(sha256(got.body), sha256(blobBytes(2 * 1024 * 1024, 'tls')))
    const up = join(scratch, 'upload')
    const bytes = blobBytes(512 * 1024 + 3, 'up-tls')
    await writeFile(up, bytes)
    const echoed = await curl(t, scratch, b.rv, creds, '/echo?n=tls', ['--data-binary', `@${up}`, '-H', 'Content-Type: application/octet-stream'])
    t.equal(echoed.status, 200, echoed.stderr)
    t.equal(sha256(echoed.body), sha256(bytes))
    t.ok(counter(await metrics(b.rv), 'rendezvous_cluster_forwards_total', 'forwarded') >= 2, 'B forwarded both to A')
    t.ok(counter(await metrics(a.rv), 'rendezvous_cluster_handovers_total', 'handed_over') >= 2, 'A handed over both')
  })

  t.test('the peer port speaks TLS: plain TCP gets no protocol answer', async t => {
    const before = counter(await metrics(a.rv), 'rendezvous_cluster_handovers_total', 'tls_refused')
    const plain = await probe(a.peerPort, undefined)
    t.equal(plain.received.toString('latin1'), '', 'closed without a byte in clear text')
    t.equal(counter(await metrics(a.rv), 'rendezvous_cluster_handovers_total', 'tls_refused'), before + 1, 'the listener took the request line for a bad TLS record')
    // The same request over TLS with a node's certificate reaches the protocol, which refuses the bad token.
    const member = await probe(a.peerPort, { ...trusted, cert: readFileSync(files.b.cert), key: readFileSync(files.b.key) })
    t.equal(member.received.toString('latin1'), 'RENDEZVOUS-PEER/2 401 malformed token\r\n', 'a node of the cluster is heard')
  })

  t.test('a connection that never starts TLS is closed after the forward timeout, not Node\'s 120 s', async t => {
    const silent = new WireClient(netConnect({ host: '127.0.0.1', port: a.peerPort }))
    const started = Date.now()
    await silent.untilClosed(20_000)
    t.ok(Date.now() - started >= 2_000, 'not before the 3 s forward timeout, roughly')
    t.equal(silent.received.length, 0)
  })

  t.test('mutual TLS: a dialler without a client certificate is refused in the handshake', async t => {
    const before = counter(await metrics(a.rv), 'rendezvous_cluster_handovers_total', 'tls_refused')
    const anonymous = await probe(a.peerPort, trusted)
    t.equal(anonymous.received.length, 0, 'not a byte of the peer protocol')
    t.match(anonymous.error?.code ?? '', /CERTIFICATE_REQUIRED|HANDSHAKE_FAILURE|ECONNRESET/, `refused by TLS: ${String(anonymous.error?.code)}`)
    const after = counter(await metrics(a.rv), 'rendezvous_cluster_handovers_total', 'tls_refused')
    t.ok(after > before, 'A counted a refused handshake')
  })

  t.test('a node whose --peer-ca does not trust A cannot forward: its client gets 503 with Retry-After, not a hang', async t => {
    const seen = site.seen.length
    const socket = tlsConnect({ host: '127.0.0.1', port: c.rv.port, ca: c.rv.ca, servername: 'localhost' })
    const client = new WireClient(socket)
    await new Promise(resolve => socket.once('secureConnect', resolve))
    const started = Date.now()
    client.write(`GET /never HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="${creds.id}"\r\n\r\n`)
    await client.untilClosed(20_000)
    t.equal(statusOf(client.text), 503, client.text)
    t.match(client.text, /\r\nRetry-After: \d+\r\n/)
    t.ok(Date.now() - started < 15_000, 'answered once its wait timeout (3 s) ran out')
    t.ok(counter(await metrics(c.rv), 'rendezvous_cluster_forwards_total', 'peer_failed') >= 1, 'C counts A as a failed peer')
    t.notOk(site.seen.slice(seen).some(r => r.url === '/never'), 'nothing reached the hidden server')
    await a.rv.waitHealth(h => (h.parked ?? 0) >= 2, 'A still holding both parked connections')
  })
})

t.test('--peer-tls-name: the nodes verify one shared name, not the address they dial', { skip }, async t => {
  const scratch = await mkdtemp(join(tmpdir(), 'rendezvous-peer-name-'))
  t.teardown(async () => { await rm(scratch, { recursive: true, force: true }) })
  const ca = await makeCa('cluster peer CA')
  // Certificates without 127.0.0.1, the address the nodes advertise: only the shared name lets them in.
  const d = await writePeerFiles(scratch, 'd', await makeNodeCert(ca, 'node d', 'peers.rendezvous.test', false), ca)
  const e = await writePeerFiles(scratch, 'e', await makeNodeCert(ca, 'node e', 'peers.rendezvous.test', false), ca)
  const redis = await startRedis(t)
  const site = await startHiddenSite(t)
  const name = ['--peer-tls-name', 'peers.rendezvous.test']
  const [hidden, via] = await Promise.all([startTlsNode(t, redis.url, d, name), startTlsNode(t, redis.url, e, name)])
  const creds = await addClusterId(t, redis.url)
  await startAgent(t, hidden.rv, creds, site.url, { pool: 1, parked: 1 })
  const got = await curl(t, scratch, via.rv, creds, '/blob?size=65536&seed=name')
  t.equal(got.status, 200, got.stderr)
  t.equal(sha256(got.body), sha256(blobBytes(65536, 'name')))
  // The same certificate, verified as the address it is dialled at, fails: the name is what made it pass.
  const byAddress = await probe(hidden.peerPort, { ca: readFileSync(d.ca), cert: readFileSync(e.cert), key: readFileSync(e.key) })
  t.match(byAddress.error?.code ?? '', /ERR_TLS_CERT_ALTNAME_INVALID/)
})
