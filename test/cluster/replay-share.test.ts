import t from 'tap'
import { createV1Token } from '../../lib/tokens/v1'
import { connectOnce } from '../helpers/wire'
import { startNode } from './nodes'
import { redisMissing, startRedis } from './redis-server'

// Skipped only where redis-server is not installed; .ci/run installs it.
const skip = redisMissing() ?? false

/* In cluster mode a node keeps the tokens it took (to give back to a Redis that lost them): each ID gets its share of those too. */
t.test('one ID cannot fill a node\'s kept tokens for the others', { skip }, async t => {
  const redis = await startRedis(t)
  const node = await startNode('a', redis.url, { replayCacheSize: 8 })
  t.teardown(async () => { await node.close() })
  const a = await node.app.rendezvous.registry.add({ id: 'hub-a' })
  const b = await node.app.rendezvous.registry.add({ id: 'hub-b' })
  const statuses = async (id: string, secret: string, n: number): Promise<number[]> => {
    const out = []
    for (let i = 0; i < n; i++) out.push((await connectOnce(node.port, id, createV1Token(id, secret))).status)
    return out
  }
  t.same(await statuses(a.id, a.secret, 7), [200, 200, 200, 200, 200, 200, 503], 'all but a share, alone')
  t.same(await statuses(b.id, b.secret, 2), [200, 200], 'the last share is B\'s')
  const metrics = await node.app.rendezvous.metrics!.metrics()
  t.match(metrics, /rendezvous_connect_total\{outcome="replay_share_full"\} 1/)
})
