import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { AcceptedTokens } from '../../lib/cluster/accepted-tokens'
import { openRedis } from '../../lib/cluster/redis-connection'
import { RedisReplayCache } from '../../lib/cluster/redis-replay-cache'
import { FileReplayCache } from '../../lib/stores/file-replay-cache'
import { MemoryReplayCache } from '../../lib/stores/memory-replay-cache'
import { redisMissing, startRedis } from '../cluster/redis-server'

/*
 * room(): how many live entries each of the relay's replay caches can still
 * take, what each ID's share and readiness are judged by.
 */

t.test('memory: the entries left before it answers full; expired ones give their place back', async t => {
  let time = 0
  const cache = new MemoryReplayCache({ maxEntries: 3, now: () => time })
  t.equal(cache.room(), 3)
  await cache.remember('a', 100)
  await cache.remember('b', 200)
  t.equal(cache.room(), 1)
  await cache.remember('a', 100)
  t.equal(cache.room(), 1, 'a replay takes nothing')
  await cache.remember('c', 0)
  t.equal(cache.room(), 1, 'nor a key with nothing left to protect')
  await cache.remember('d', 300)
  t.equal(cache.room(), 0)
  t.equal(await cache.remember('e', 300), 'full')
  time = 100
  t.equal(cache.room(), 1, 'a at its expiry: gone, without a remember() to drop it')
  time = 300
  t.equal(cache.room(), 3)
})

t.test('file: the room of its memory, journal entries read back at a start included', async t => {
  const root = mkdtempSync(join(tmpdir(), 'rv-replay-room-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  const dataDir = join(root, 'data')
  const first = await FileReplayCache.open({ dataDir, maxEntries: 4 })
  await first.remember('a', 60_000)
  await first.remember('b', 60_000)
  t.equal(first.room(), 2)
  await first.close()
  const again = await FileReplayCache.open({ dataDir, maxEntries: 4 })
  t.teardown(() => again.close())
  t.equal(again.room(), 2)
  await again.remember('c', 60_000)
  t.equal(again.room(), 1)
})

t.test('accepted tokens: the live keys left to take; expired ones at the front go first', async t => {
  const kept = new AcceptedTokens(3)
  kept.add('a', 1000, 0)
  kept.add('b', 2000, 0)
  t.equal(kept.room(0), 1)
  kept.add('c', 3000, 0)
  t.equal(kept.room(0), 0)
  t.equal(kept.room(1000), 1)
  t.equal(kept.room(5000), 3)
})

t.test('redis: the tokens this node can still keep, less those on their way to Redis', { skip: redisMissing() ?? false }, async t => {
  const server = await startRedis(t)
  const conn = openRedis(server.url)
  await conn.connect(5000)
  const cache = new RedisReplayCache(conn, { maxKept: 3 })
  t.teardown(async () => { await cache.close(); await conn.close() })
  t.equal(cache.room(), 3)
  const taking = [cache.remember('a', 60_000), cache.remember('b', 60_000)]
  t.equal(cache.room(), 1, 'two sent, not yet answered')
  t.same(await Promise.all(taking), ['fresh', 'fresh'])
  t.equal(cache.room(), 1, 'and kept once answered')
  t.equal(await cache.remember('a', 60_000), 'replayed')
  t.equal(cache.room(), 1)
  await cache.remember('c', 60_000)
  t.equal(cache.room(), 0)
})
