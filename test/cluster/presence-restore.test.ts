import t from 'tap'
import { Redis } from 'ioredis'
import { until } from '../helpers/until'
import { exchange, startNode } from './nodes'
import { redisMissing, startRedis } from './redis-server'

// Skipped only where redis-server is not installed; .ci/run installs it.
const skip = redisMissing() ?? false

// A Redis that comes back from an older snapshot (or an AOF that lost its last
// second, or a lagging replica promoted) still holds the node key, renewed
// every heartbeat, so the node cannot tell from it that its counts are old.
t.test('after Redis restarts from an older snapshot, a node publishes its parked counts again', { skip }, async t => {
  const redis = await startRedis(t)
  // A node key that outlives the restart, as with the default 5 s TTL and a quick restart.
  const timers = { heartbeat: 300, presenceTtl: 30_000 }
  const a = await startNode('a', redis.url, {}, undefined, timers)
  const b = await startNode('b', redis.url, {}, undefined, timers)
  const admin = new Redis(redis.port, '127.0.0.1', { maxRetriesPerRequest: 0 })
  admin.on('error', () => {})
  t.teardown(async () => { admin.disconnect(); await a.close(); await b.close() })
  const added = await a.app.rendezvous.registry.add({ id: 'hub-new' })
  const gone = await a.app.rendezvous.registry.add({ id: 'hub-gone' })
  await until(() => b.app.rendezvous.registry.get('hub-new') !== undefined && b.app.rendezvous.registry.get('hub-gone') !== undefined, 5000, 'the IDs on b')
  const parkedOn = async (id: string): Promise<Record<string, string>> => await admin.hgetall(`rendezvous:parked:${id}`)

  // The snapshot: a holds 2 for hub-gone and nothing for hub-new.
  const old = [await a.park('hub-gone', gone.secret), await a.park('hub-gone', gone.secret)]
  await until(async () => (await parkedOn('hub-gone')).a === '2', 5000, 'a publishes 2 for hub-gone')
  t.same(await parkedOn('hub-new'), {})
  await admin.save()

  // Since the snapshot: hub-gone's sockets left, two parked for hub-new.
  for (const hidden of old) hidden.destroy()
  await until(async () => (await parkedOn('hub-gone')).a === undefined, 5000, 'a withdraws hub-gone')
  const fresh = [await a.park('hub-new', added.secret), await a.park('hub-new', added.secret)]
  await until(async () => (await parkedOn('hub-new')).a === '2', 5000, 'a publishes 2 for hub-new')

  // Back within a second or two, from the snapshot above (a may rewrite its counts before this test reads them, so they are not read here).
  await redis.crash()
  await redis.start()

  await until(async () => (await parkedOn('hub-new')).a === '2', 10_000, 'a publishes its 2 for hub-new again')
  await until(async () => (await parkedOn('hub-gone')).a === undefined, 5000, 'a withdraws its stale count for hub-gone')
  t.equal(a.app.rendezvous.parkedFor('hub-new'), 2)
  await until(() => b.app.rendezvous.reachable(), 10_000, 'b ready again')
  // Newest first.
  await exchange(t, b, fresh[1]!, 'hub-new')
  fresh[0]!.destroy()
})
