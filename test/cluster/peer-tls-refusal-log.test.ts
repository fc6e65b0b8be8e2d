import t, { type Test } from 'tap'
import { until } from '../helpers/until'
import { statusOf } from '../helpers/wire'
import { LogLines, type LogLine } from './log-lines'
import { counter, dialPeer } from './peer-dial'
import { CLUSTER_SECRET, rendezvousRequest, startNode, type TestNode } from './nodes'
import { makeCa, makeNodeCert, type TestCa } from './peer-certs'
import { redisMissing, startRedis } from './redis-server'

// Skipped only where redis-server is not installed; .ci/run installs it.
const skip = redisMissing() ?? false

/** Mutual TLS on the peer link: this node's certificate signed by `own`, the others' verified against `trusts`. */
async function peerTls (own: TestCa, trusts: TestCa, name: string) {
  const { cert, key } = await makeNodeCert(own, name)
  return {
    server: { cert, key, ca: trusts.cert, requestCert: true, rejectUnauthorized: true },
    client: { cert, key, ca: trusts.cert }
  }
}

/** Each cause (error) is a warning once; its repeats are debug lines. */
function onePerCause (t: Test, lines: LogLine[]): void {
  const causes = new Set(lines.map(l => l.error))
  t.equal(lines.filter(l => l.level === 40).length, causes.size, `one warning per cause (${[...causes].join('; ')})`)
  t.ok(lines.length > causes.size, 'the repeats are debug lines')
  for (const cause of causes) t.equal(lines.find(l => l.error === cause)?.level, 40, 'the first of each cause is the warning')
}

t.test('a refused TLS handshake on the peer link is a warning once a minute on both sides, with its cause', { skip }, async t => {
  const [ca, otherCa] = await Promise.all([makeCa('cluster peer CA'), makeCa('another CA')])
  const redis = await startRedis(t)
  const logs = { a: new LogLines(), outsider: new LogLines(), distrustful: new LogLines() }
  const node = async (name: keyof typeof logs, tls: Awaited<ReturnType<typeof peerTls>>): Promise<TestNode> =>
    await startNode(name, redis.url, { cluster: { secret: CLUSTER_SECRET, peerTls: tls } }, logs[name])
  const a = await node('a', await peerTls(ca, ca, 'node a'))
  // Its certificate is of another CA: it trusts a, a refuses it.
  const outsider = await node('outsider', await peerTls(otherCa, ca, 'outsider'))
  // Its certificate is the cluster's, but it trusts another CA: it refuses a.
  const distrustful = await node('distrustful', { ...(await peerTls(ca, otherCa, 'distrustful')) })
  t.teardown(async () => { await a.close(); await outsider.close(); await distrustful.close() })
  const { secret } = await a.app.rendezvous.registry.add({ id: 'hub-1' })
  await until(() => outsider.app.rendezvous.registry.get('hub-1') !== undefined && distrustful.app.rendezvous.registry.get('hub-1') !== undefined, 5000, 'the ID everywhere')
  const hidden = await a.park('hub-1', secret)

  for (const via of [outsider, distrustful]) {
    // The client waits 1 s, and its node asks a again every 250 ms.
    const client = await via.open()
    client.write(rendezvousRequest('hub-1').sent)
    await client.untilClosed()
    t.equal(statusOf(client.text), 503, `${via.name}: no connection through a refused link`)
  }
  t.equal(hidden.received.length, 0, 'nothing reached the hidden server')

  const refused = logs.a.find('refused a peer link: TLS handshake failed')
  t.ok(refused.length >= 4, `a refused both nodes several times (${refused.length})`)
  // One address, (at least) two causes: the outsider's certificate, and a dialler that gave up the handshake.
  const warned = refused.filter(l => l.level === 40)
  onePerCause(t, refused)
  t.match(warned[0], { node: 'a', from: '127.0.0.1', outcome: 'tls_refused', error: /^the dialling node's certificate: [A-Z_]+$/, msg: /--peer-ca sign every node's --peer-tls-cert/ })
  t.ok(warned.length >= 2, 'the distrustful node\'s refusals are another cause')
  t.match(warned.at(-1), { node: 'a', from: '127.0.0.1', outcome: 'tls_refused', error: /\S/ })

  const outsiderSaw = logs.outsider.find('node did not hand over a connection')
  t.ok(outsiderSaw.length >= 2, `the outsider asked more than once (${outsiderSaw.length})`)
  onePerCause(t, outsiderSaw)
  t.match(outsiderSaw[0], { level: 40, peer: 'a', error: /TLS/ }, 'the dialling side says the link failed in TLS')

  const distrustfulSaw = logs.distrustful.find('node did not hand over a connection')
  onePerCause(t, distrustfulSaw)
  t.match(distrustfulSaw[0], { level: 40, peer: 'a', error: /^the TLS handshake failed: / }, 'its own verification of a failed in the handshake')
  hidden.destroy()
})

t.test('a bare TCP connection to the mutual-TLS peer listener, closed without a byte, is incomplete, not a TLS refusal', { skip }, async t => {
  const ca = await makeCa('cluster peer CA')
  const redis = await startRedis(t)
  const log = new LogLines()
  const a = await startNode('a', redis.url, { cluster: { secret: CLUSTER_SECRET, peerTls: await peerTls(ca, ca, 'node a') } }, log)
  t.teardown(async () => { await a.close() })
  // What a TCP health check or a port scan does, three times.
  for (let i = 0; i < 3; i++) {
    const probe = await dialPeer(a.app.rendezvous.cluster!.peerAddress!)
    probe.socket.end()
    await probe.untilClosed()
  }
  const metrics = async (): Promise<string> => await a.app.rendezvous.metrics!.metrics()
  await until(async () => counter(await metrics(), 'rendezvous_cluster_handovers_total', 'incomplete') === 3, 3000, 'three incomplete links')
  t.equal(counter(await metrics(), 'rendezvous_cluster_handovers_total', 'tls_refused'), 0, 'no TLS refusal counted')
  t.same(log.find('refused a peer link: TLS handshake failed'), [], 'no line blames the certificates')
  const lines = log.find('refused a peer link: no whole request')
  t.same(lines.map(l => [l.level, l.outcome]), [[40, 'incomplete'], [20, 'incomplete'], [20, 'incomplete']], 'one warning, then debug lines')
})
