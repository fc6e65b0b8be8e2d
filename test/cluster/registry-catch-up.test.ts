import t from 'tap'
import { until } from '../helpers/until'
import { startNode } from './nodes'
import { redisMissing, startRedis } from './redis-server'

/*
 * A node learns of IDs added at another node by pub/sub. A message it cannot
 * place (the first one from a fresh Redis, whose epoch it has not read yet, or
 * one after a gap) makes it re-read the IDs. A re-read asked for while another
 * read was already on its way used to share that read, sent before the
 * change: the node missed the change until its next periodic re-read. Each
 * ID added here must reach the other node at once, not after the periodic
 * re-read, which these nodes do only every 30 s.
 */

const TIMERS = { heartbeat: 30_000, presenceTtl: 60_000, resyncInterval: 30_000 }

t.test('IDs added in a burst at one node, on a fresh Redis, all reach the other node at once', { skip: redisMissing() ?? false }, async t => {
  for (let round = 0; round < 5; round++) {
    const redis = await startRedis(t)
    const a = await startNode('a', redis.url, {}, undefined, TIMERS)
    const b = await startNode('b', redis.url, {}, undefined, TIMERS)
    const ids = Array.from({ length: 6 }, (_, i) => `burst-${round}-${i}`)
    for (const id of ids) await a.app.rendezvous.registry.add({ id })
    await until(() => ids.every(id => b.app.rendezvous.registry.get(id) !== undefined), 5000,
      `round ${round}: every ID on b (has ${ids.filter(id => b.app.rendezvous.registry.get(id) !== undefined).length})`)
    t.pass(`round ${round}: all ${ids.length} on b`)
    await a.close()
    await b.close()
    await redis.stop()
  }
})
