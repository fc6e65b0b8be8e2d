import t from 'tap'
import { openRedis } from '../../lib/cluster/redis-connection'
import { RedisThrottleStore } from '../../lib/cluster/redis-throttle-store'
import { until } from '../helpers/until'
import { redisMissing, startRedis } from './redis-server'

// Skipped only where redis-server is not installed; .ci/run installs it.
const skip = redisMissing() ?? false

t.test('refund in Redis: a guarded decrement that keeps the window, never creates a key, never goes below zero', { skip }, async t => {
  const redis = await startRedis(t)
  const conn = openRedis(redis.url)
  await conn.connect(5000)
  t.teardown(async () => { await conn.close() })
  const store = new RedisThrottleStore(conn, { keyPrefix: 'test:' })
  const stored = (key: string): string => `test:throttle:count:${key}`

  for (let i = 0; i < 3; i++) await store.hit('k', 60_000)
  const before = await conn.client.pttl(stored('k'))
  await store.refund('k')
  t.equal(await conn.client.get(stored('k')), '2')
  const after = await conn.client.pttl(stored('k'))
  t.ok(after > 0 && after <= before, `the window runs on (${before} ms, then ${after} ms left)`)
  t.equal(await store.hit('k', 60_000), 3)
  t.ok(await conn.client.pttl(stored('k')) <= before, 'and a later hit does not restart it')

  await store.refund('never-hit')
  t.equal(await conn.client.exists(stored('never-hit')), 0, 'no key made for a refund alone')

  await store.hit('once', 60_000)
  await store.refund('once')
  await store.refund('once')
  t.equal(await conn.client.exists(stored('once')), 0, 'taken back to nothing, the key goes; past it, nothing is made')
  t.equal(await store.hit('once', 60_000), 1, 'the next hit counts from one, in a fresh window')
  t.ok(await conn.client.pttl(stored('once')) > 59_000)

  await Promise.all(Array.from({ length: 50 }, async () => {
    await store.hit('busy', 60_000)
    await store.refund('busy')
  }))
  t.equal(await conn.client.exists(stored('busy')), 0, '50 hits and 50 refunds at once leave nothing')
})

t.test('with Redis away, a refund takes back the hit counted on the node meanwhile', { skip }, async t => {
  const redis = await startRedis(t)
  const conn = openRedis(redis.url)
  await conn.connect(5000)
  t.teardown(async () => { await conn.close() })
  const store = new RedisThrottleStore(conn, { keyPrefix: 'test:' })
  await redis.stop()
  await until(() => !conn.reachable(), 5000, 'Redis seen away')
  t.equal(await store.hit('k', 60_000), 1)
  t.equal(await store.hit('k', 60_000), 2)
  await store.refund('k')
  t.equal(await store.hit('k', 60_000), 2, 'the local count took one back')
})
