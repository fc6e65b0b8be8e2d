import t from 'tap'
import { until } from '../helpers/until'
import { statusOf, type WireClient } from '../helpers/wire'
import { createV1Token } from '../../lib/tokens/v1'
import { createTotp } from '../../lib/tokens/totp'
import { redisMissing, startRedis } from './redis-server'
import { startNode, type TestNode } from './nodes'

// Skipped only where redis-server is not installed; .ci/run installs it.
const skip = redisMissing() ?? false

async function connect (node: TestNode, token: string): Promise<WireClient> {
  const c = await node.open()
  c.write(`CONNECT uuid:hub-1?response=${token} HTTP/1.1\r\nHost: h\r\n\r\n`)
  await c.untilText('\r\n\r\n')
  return c
}

t.test('with the replay cache in Redis, a token refused by a full lot stays good, and the cache still picks one of two at once', { skip }, async t => {
  const redis = await startRedis(t)
  const a = await startNode('a', redis.url, { maxParkedPerId: 1, retryAfter: 5, totp: 'strict' })
  const b = await startNode('b', redis.url, { totp: 'strict' })
  t.teardown(async () => { await a.close(); await b.close() })
  const { secret } = await a.app.rendezvous.registry.add({ id: 'hub-1' })
  await until(() => b.app.rendezvous.registry.get('hub-1') !== undefined, 2000, 'the ID on b')
  const blocker = await a.park('hub-1', secret)

  for (const [kind, make] of [['v1', () => createV1Token('hub-1', secret)], ['TOTP', () => createTotp(secret)]] as const) {
    const token = make()
    const full = await connect(a, token)
    await full.untilClosed()
    t.match(full.text, /^HTTP\/1\.1 503 Service Unavailable\r\n[^]*\r\nRetry-After: 5\r\n/, `${kind}: a's lot is full`)
    const elsewhere = await connect(b, token)
    t.equal(elsewhere.text, 'HTTP/1.1 200 OK\r\n\r\n', `${kind}: the same token is parked by b`)
    elsewhere.destroy()
  }

  blocker.destroy()
  await until(() => a.app.rendezvous.stats().parked === 0, 2000, 'a empty')
  for (const [kind, token] of [['v1', createV1Token('hub-1', secret)], ['TOTP', createTotp(secret, Date.now(), 8)]] as const) {
    const [x, y] = [await a.open(), await b.open()]
    const head = `CONNECT uuid:hub-1?response=${token} HTTP/1.1\r\nHost: h\r\n\r\n`
    x.write(head)
    y.write(head)
    await Promise.all([x.untilText('\r\n\r\n'), y.untilText('\r\n\r\n')])
    t.same([statusOf(x.text), statusOf(y.text)].sort(), [200, 401], `${kind}: sent to both nodes at once, accepted once`)
    x.destroy()
    y.destroy()
  }
})
