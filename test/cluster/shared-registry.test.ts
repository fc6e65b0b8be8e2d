import t from 'tap'
import { Registry as PromRegistry } from 'prom-client'
import { sample } from '../helpers/prometheus'
import { until } from '../helpers/until'
import { startNode } from './nodes'
import { redisMissing, startRedis } from './redis-server'

// Two cluster nodes in one process (two apps, each on a Redis of its own here) on one prom-client registry:
// rendezvous_cluster_redis_up must not show only the first node's Redis, nor a closed node's.

t.test('rendezvous_cluster_redis_up on a shared registry is 1 only while every open node reaches its Redis', { skip: redisMissing() ?? false }, async t => {
  const metrics = new PromRegistry()
  const redisA = await startRedis(t)
  const redisB = await startRedis(t)
  const a = await startNode('a', redisA.url, { metrics })
  const b = await startNode('b', redisB.url, { metrics })
  t.teardown(async () => { await a.close(); await b.close() })
  const up = async (): Promise<number | undefined> => sample(await metrics.metrics(), 'rendezvous_cluster_redis_up')
  t.equal(await up(), 1, 'both reach Redis')

  await redisB.stop()
  await until(() => !b.app.rendezvous.reachable(), 10_000, 'B to lose its Redis')
  t.equal(await up(), 0, 'B\'s outage shows although A, registered first, is fine')

  await a.close()
  await redisB.start()
  await until(() => b.app.rendezvous.reachable(), 10_000, 'B to reach its Redis again')
  t.equal(await up(), 1, 'with A closed, B alone counts')
})
