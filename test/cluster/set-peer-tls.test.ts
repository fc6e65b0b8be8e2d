import { X509Certificate } from 'node:crypto'
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls'
import t from 'tap'
import type { PeerTlsOptions } from '../../lib/cluster/options'
import { splitAddress } from '../../lib/cluster/forwarder'
import { until } from '../helpers/until'
import { makeCa, makeNodeCert, type TestCa } from './peer-certs'
import { CLUSTER_SECRET, exchange, startNode } from './nodes'
import { redisMissing, startRedis } from './redis-server'

// The plugin's fastify.rendezvous.cluster.setPeerTls (docs/cluster.md, In an application): the library half of the peer TLS reload.

const skip = redisMissing() ?? false

const tlsOf = (pair: { cert: string, key: string }, ...cas: TestCa[]): PeerTlsOptions => {
  const ca = cas.map(c => c.cert)
  return { server: { ...pair, ca, requestCert: true, rejectUnauthorized: true }, client: { ...pair, ca } }
}

async function presented (address: string, as: ConnectionOptions): Promise<string> {
  return await new Promise((resolve, reject) => {
    const socket = tlsConnect({ ...splitAddress(address), ...as })
    socket.once('secureConnect', () => {
      resolve(socket.getPeerCertificate().fingerprint256)
      socket.destroy()
    })
    socket.once('error', reject)
  })
}

t.test('setPeerTls swaps the listener\'s and the dialler\'s material for new links', { skip }, async t => {
  const redis = await startRedis(t)
  const [oldCa, newCa] = await Promise.all([makeCa('old peer CA'), makeCa('new peer CA')])
  const [a1, a2, b1] = await Promise.all([makeNodeCert(oldCa, 'a'), makeNodeCert(newCa, 'a renewed'), makeNodeCert(oldCa, 'b')])
  const a = await startNode('a', redis.url, { cluster: { secret: CLUSTER_SECRET, peerTls: tlsOf(a1, oldCa) } })
  const b = await startNode('b', redis.url, { cluster: { secret: CLUSTER_SECRET, peerTls: tlsOf(b1, oldCa, newCa) } })
  const plain = await startNode('plain', redis.url)
  t.teardown(async () => { await a.close(); await b.close(); await plain.close() })
  const asB = { ...b1, ca: [oldCa.cert, newCa.cert] }
  const address = a.app.rendezvous.cluster!.peerAddress!
  t.equal(await presented(address, asB), new X509Certificate(a1.cert).fingerprint256)

  a.app.rendezvous.cluster!.setPeerTls(tlsOf(a2, oldCa, newCa))
  t.equal(await presented(address, asB), new X509Certificate(a2.cert).fingerprint256, 'the listener presents the new certificate')
  const { secret } = await a.app.rendezvous.registry.add({ id: 'hub-tls' })
  await until(() => b.app.rendezvous.registry.get('hub-tls') !== undefined, 5000, 'the ID on b')
  await exchange(t, b, await a.park('hub-tls', secret), 'hub-tls')

  t.throws(() => plain.app.rendezvous.cluster!.setPeerTls(tlsOf(a2, newCa)), { code: 'FST_RENDEZVOUS_BAD_OPTION' }, 'a plain TCP link stays plain')
  t.throws(() => a.app.rendezvous.cluster!.setPeerTls({ client: tlsOf(a2, newCa).client }), { code: 'FST_RENDEZVOUS_BAD_OPTION' }, 'and a TLS listener keeps TLS')
})
