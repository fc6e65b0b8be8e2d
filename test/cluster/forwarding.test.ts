import { createServer, type AddressInfo, type Socket } from 'node:net'
import t from 'tap'
import { until } from '../helpers/until'
import { redisMissing, startRedis } from './redis-server'
import { CLUSTER_SECRET, exchange, startNode, type TestNode } from './nodes'
import { tlsCert, tlsKey } from '../helpers/tls'
import { statusOf } from '../helpers/wire'
import { createV1Token } from '../../lib/tokens/v1'
import { Redis } from 'ioredis'
import { LogLines } from './log-lines'

// Skipped only where redis-server is not installed; .ci/run installs it.
const skip = redisMissing() ?? false

t.test('three nodes in one process share IDs, tokens and parked connections', { skip }, async t => {
  const redis = await startRedis(t)
  const nodes: TestNode[] = []
  for (const name of ['a', 'b', 'c']) nodes.push(await startNode(name, redis.url))
  t.teardown(async () => { for (const n of nodes) await n.close() })
  const [a, b, c] = nodes as [TestNode, TestNode, TestNode]
  const record = await a.app.rendezvous.registry.add({ id: 'Hub-1' })

  t.test('an ID added through one node is known on the others within a second', async t => {
    await until(() => b.app.rendezvous.registry.get('hub-1') !== undefined && c.app.rendezvous.registry.get('hub-1') !== undefined, 1000, 'the ID on b and c')
    t.equal(c.app.rendezvous.registry.get('HUB-1')?.secret, record.secret)
  })

  for (const via of [b, c]) {
    t.test(`a connection parked on a is reached through ${via.name}, byte for byte`, async t => {
      const hidden = await a.park('hub-1', record.secret)
      await until(async () => (await a.app.rendezvous.stats()).parked === 1, 5000, 'the park')
      const client = await via.open()
      const head = 'POST /x?y=1 HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="HUB-1", realm="rendezvous"\r\nX-Dup: 1\r\nX-Dup: 2\r\nContent-Length: 4\r\n\r\n'
      client.write(head + 'ab')
      await hidden.untilText('ab')
      client.write(Buffer.from([0, 0xff]))
      await hidden.untilBytes(head.length - 'Authorization: Digest username="HUB-1", realm="rendezvous"\r\n'.length + 4)
      t.same(hidden.received, Buffer.concat([
        Buffer.from('POST /x?y=1 HTTP/1.1\r\nHost: h\r\nX-Dup: 1\r\nX-Dup: 2\r\nContent-Length: 4\r\n\r\nab', 'latin1'),
        Buffer.from([0, 0xff])
      ]))
      const answer = Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n'), Buffer.from([1, 2, 0xfe])])
      hidden.write(answer)
      await client.untilBytes(answer.length)
      t.same(client.received, answer)
      hidden.destroy()
      await client.untilClosed()
      t.equal(a.app.rendezvous.stats().parked, 0)
    })
  }

  t.test('a token used at a is refused at b', async t => {
    const token = createV1Token('hub-1', record.secret)
    const first = await a.open()
    first.write(`CONNECT uuid:hub-1?response=${token} HTTP/1.1\r\nHost: h\r\n\r\n`)
    await first.untilText('\r\n\r\n')
    t.equal(statusOf(first.text), 200)
    const again = await b.open()
    again.write(`CONNECT uuid:hub-1?response=${token} HTTP/1.1\r\nHost: h\r\n\r\n`)
    await again.untilClosed()
    t.equal(statusOf(again.text), 401)
    first.destroy()
  })

  t.test('with nothing parked anywhere, the client gets a 503 after the wait', async t => {
    await until(() => a.app.rendezvous.stats().parked === 0, 5000, 'no parked connection')
    const client = await c.open()
    client.write('GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="hub-1"\r\n\r\n')
    await client.untilClosed()
    t.equal(statusOf(client.text), 503)
    t.match(client.text, /\r\nRetry-After: \d+\r\n/)
  })

  t.test('a client waiting on c is served by a connection that parks on a meanwhile', async t => {
    await until(() => a.app.rendezvous.stats().parked === 0, 5000, 'no parked connection')
    const client = await c.open()
    client.write('GET /late HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="hub-1"\r\n\r\n')
    await until(() => c.app.rendezvous.stats().waiting === 1, 5000, 'the client waiting on c')
    const hidden = await a.park('hub-1', record.secret)
    await hidden.untilText('\r\n\r\n')
    t.equal(hidden.text, 'GET /late HTTP/1.1\r\nHost: h\r\n\r\n')
    hidden.write('HTTP/1.1 204 No Content\r\n\r\n')
    await client.untilText('\r\n\r\n')
    t.equal(statusOf(client.text), 204)
    hidden.destroy()
  })

  t.test('an ID removed through c closes its parked connection on a', async t => {
    const hidden = await a.park('hub-1', record.secret)
    t.ok(await c.app.rendezvous.registry.remove('hub-1'))
    await hidden.untilClosed(2000)
    await until(() => b.app.rendezvous.registry.get('hub-1') === undefined, 1000, 'the removal on b')
    const client = await b.open()
    client.write('GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="hub-1"\r\n\r\n')
    await client.untilClosed()
    t.equal(statusOf(client.text), 404)
  })
})

t.test('forwarding skips a node that fails and a node that cannot prove the cluster secret', { skip }, async t => {
  const redis = await startRedis(t)
  const aLog = new LogLines()
  const outsiderLog = new LogLines()
  const a = await startNode('a', redis.url, {}, aLog)
  const b = await startNode('b', redis.url)
  const outsider = await startNode('outsider', redis.url, { cluster: { secret: 'not the cluster secret at all' } }, outsiderLog)
  t.teardown(async () => { await a.close(); await b.close(); await outsider.close() })
  const { secret } = await a.app.rendezvous.registry.add({ id: 'hub-2' })
  const hidden = await a.park('hub-2', secret)
  // A node that died a moment ago: still on the map, claiming many parked sockets, but nothing listens.
  const raw = new Redis(redis.url)
  t.teardown(() => raw.disconnect())
  await raw.set('rendezvous:node:ghost', '127.0.0.1:1', 'PX', 60_000)
  await raw.hset('rendezvous:parked:hub-2', 'ghost', '99')
  await until(async () => (await raw.hget('rendezvous:parked:hub-2', 'a')) === '1', 5000, 'a on the map')

  t.test('a node with the wrong secret is refused by a, and its client gets 503', async t => {
    await until(() => outsider.app.rendezvous.registry.get('hub-2') !== undefined, 5000, 'the ID on the outsider')
    const client = await outsider.open()
    client.write('GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="hub-2"\r\n\r\n')
    await client.untilClosed()
    t.equal(statusOf(client.text), 503)
    t.equal(hidden.received.length, 0, 'nothing reached the hidden server')
    t.equal(a.app.rendezvous.parkedFor('hub-2'), 1, 'a still holds its socket')
    // The client asked a about four times a second for its whole wait: one warning each side, the rest at debug.
    const asked = outsiderLog.lines.filter(l => l.peer === 'a' && l.msg.startsWith('node did not hand over a connection'))
    t.ok(asked.every(l => l.node === 'outsider'), '`node` is the node that logs, `peer` the one it asked')
    const written = outsiderLog.raw.filter(l => l.includes('node did not hand over a connection'))
    t.ok(written.length > 0 && written.every(l => l.match(/"node":/g)?.length === 1), 'no key written twice')
    t.ok(asked.length >= 2, `the outsider asked a more than once (${asked.length})`)
    t.same(asked.filter(l => l.level === 40).map(l => l.msg), ['node did not hand over a connection; trying the next (is --cluster-secret the same on every node?)'])
    t.notOk(asked.some(l => 'err' in l), 'no stack traces')
    const refused = aLog.lines.filter(l => l.msg.startsWith('refused a peer link'))
    t.ok(refused.length >= 2, `a refused more than once (${refused.length})`)
    t.same(refused.filter(l => l.level === 40).map(l => l.msg), ['refused a peer link: authentication failed (is --cluster-secret the same on every node?)'])
  })

  t.test('b tries the dead node first, then a', async t => {
    await exchange(t, b, hidden, 'hub-2', '/after-ghost')
    t.match(await b.app.rendezvous.metrics!.metrics(), /rendezvous_cluster_forwards_total\{outcome="peer_failed"\} 1\n/, 'the dead node was tried and failed')
  })
})

t.test('the peer link can run over TLS', { skip }, async t => {
  const redis = await startRedis(t)
  const peerTls = { server: { key: tlsKey, cert: tlsCert }, client: { ca: tlsCert, servername: 'localhost' } }
  const a = await startNode('a', redis.url, { cluster: { secret: CLUSTER_SECRET, peerTls } })
  const b = await startNode('b', redis.url, { cluster: { secret: CLUSTER_SECRET, peerTls } })
  const plain = await startNode('plain', redis.url)
  t.teardown(async () => { await a.close(); await b.close(); await plain.close() })
  const { secret } = await a.app.rendezvous.registry.add({ id: 'hub-3' })
  const hidden = await a.park('hub-3', secret)
  await until(() => plain.app.rendezvous.registry.get('hub-3') !== undefined && b.app.rendezvous.registry.get('hub-3') !== undefined, 5000, 'the ID everywhere')

  const refused = await plain.open()
  refused.write('GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="hub-3"\r\n\r\n')
  await refused.untilClosed()
  t.equal(statusOf(refused.text), 503, 'a node speaking plain TCP to a TLS peer listener gets nothing')

  await exchange(t, b, hidden, 'hub-3', '/tls')
})

t.test('a node that accepts and never answers does not hold a client past its wait timeout', { skip }, async t => {
  const redis = await startRedis(t)
  // The forward timeout is far longer than the wait: only the client's deadline can end the ask.
  const b = await startNode('b', redis.url, { waitTimeout: 1000, cluster: { secret: CLUSTER_SECRET, forwardTimeout: 20_000 } })
  t.teardown(async () => { await b.close() })
  // A stopped node (SIGSTOP): the kernel still accepts its connections, nothing reads them.
  const held: Socket[] = []
  const silent = createServer(socket => { held.push(socket); socket.on('error', () => {}) })
  await new Promise<void>(resolve => silent.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { for (const s of held) s.destroy(); silent.close() })
  await b.app.rendezvous.registry.add({ id: 'hub-4' })
  const raw = new Redis(redis.url)
  t.teardown(() => raw.disconnect())
  await raw.set('rendezvous:node:stopped', `127.0.0.1:${(silent.address() as AddressInfo).port}`, 'PX', 60_000)
  await raw.hset('rendezvous:parked:hub-4', 'stopped', '1')

  const client = await b.open()
  const started = Date.now()
  client.write('GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="hub-4"\r\n\r\n')
  await client.untilClosed(15_000)
  const waited = Date.now() - started
  t.equal(statusOf(client.text), 503)
  t.match(client.text, /\r\nRetry-After: \d+\r\n/)
  t.ok(held.length >= 1, 'the stopped node was asked')
  t.ok(waited < 4000, `the answer came at the wait timeout (1 s), not the forward timeout (20 s): ${waited} ms`)
})
