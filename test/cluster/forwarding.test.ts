import t from 'tap'
import { redisMissing, startRedis } from './redis-server'
import { startNode, until, type TestNode } from './nodes'
import { statusOf } from '../helpers/wire'
import { createV1Token } from '../../lib/tokens/v1'

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
    await until(() => b.app.rendezvous.registry.get('hub-1') !== undefined && c.app.rendezvous.registry.get('hub-1') !== undefined, 'the ID on b and c', 1000)
    t.equal(c.app.rendezvous.registry.get('HUB-1')?.secret, record.secret)
  })

  for (const via of [b, c]) {
    t.test(`a connection parked on a is reached through ${via.name}, byte for byte`, async t => {
      const hidden = await a.park('hub-1', record.secret)
      await until(async () => (await a.app.rendezvous.stats()).parked === 1, 'the park')
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
    await until(() => a.app.rendezvous.stats().parked === 0, 'no parked connection')
    const client = await c.open()
    client.write('GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="hub-1"\r\n\r\n')
    await client.untilClosed()
    t.equal(statusOf(client.text), 503)
    t.match(client.text, /\r\nRetry-After: \d+\r\n/)
  })

  t.test('an ID removed through c closes its parked connection on a', async t => {
    const hidden = await a.park('hub-1', record.secret)
    t.ok(await c.app.rendezvous.registry.remove('hub-1'))
    await hidden.untilClosed(2000)
    await until(() => b.app.rendezvous.registry.get('hub-1') === undefined, 'the removal on b', 1000)
    const client = await b.open()
    client.write('GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="hub-1"\r\n\r\n')
    await client.untilClosed()
    t.equal(statusOf(client.text), 404)
  })
})
