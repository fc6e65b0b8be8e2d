import t from 'tap'
import { until } from '../helpers/until'
import { connectStatus, startNode, type TestNode } from './nodes'
import { redisMissing, startRedis } from './redis-server'

// Skipped only where redis-server is not installed; .ci/run installs it.
const skip = redisMissing() ?? false

interface Probe { node: string, at: number, connect: number | undefined, ready: number, redisUp: string | undefined, readyWithOldCopy: boolean }

async function probe (node: TestNode, id: string, secret: string, started: number): Promise<Probe> {
  // In one tick: the node says it is ready while its copy still holds the gone ID.
  const readyWithOldCopy = node.app.rendezvous.reachable() && node.app.rendezvous.registry.get(id) !== undefined
  // Readiness and the gauge first: a node that says ready must already refuse the ID.
  const ready = await node.app.inject({ method: 'GET', url: '/readyz' })
  const metrics = await node.app.rendezvous.metrics!.metrics()
  const redisUp = /^rendezvous_cluster_redis_up (\d)$/m.exec(metrics)?.[1]
  const connect = await connectStatus(node.port, false, id, secret).catch(() => undefined)
  return { node: node.name, at: Date.now() - started, connect, ready: ready.statusCode, redisUp, readyWithOldCopy }
}

// A Redis that comes back empty holds no ID: a node must not take a CONNECT for
// one on the strength of its copy from before, and must not say it is ready
// until it has read the IDs from the Redis it is connected to now.
t.test('after Redis comes back empty, no node accepts a CONNECT for an ID that is gone, nor says it is ready before it knows', { skip }, async t => {
  const redis = await startRedis(t)
  // The default re-read period: what the nodes used to wait for.
  const timers = { heartbeat: 200, presenceTtl: 1000, resyncInterval: 5000 }
  const nodes: TestNode[] = []
  for (const name of ['a', 'b', 'c', 'd']) nodes.push(await startNode(name, redis.url, { readyPath: '/readyz' }, undefined, timers))
  t.teardown(async () => { for (const node of nodes) await node.close() })
  // Which of a node's two connections to Redis is back first varies: several rounds, so that each node meets both orders.
  for (let round = 1; round <= 4; round++) {
    const { id, secret } = await nodes[0]!.app.rendezvous.registry.add()
    await until(() => nodes.every(n => n.app.rendezvous.registry.get(id) !== undefined && n.app.rendezvous.reachable()), 5000, 'every node knows the ID')
    const parked = await nodes[0]!.park(id, secret)
    for (const node of nodes) t.equal(await connectStatus(node.port, false, id, secret), 200, `round ${round}: ${node.name} parks before the restart`)

    await redis.crash()
    await redis.start()
    const started = Date.now()
    const seen: Probe[] = []
    while (Date.now() - started < 2000) {
      seen.push(...await Promise.all(nodes.map(async node => await probe(node, id, secret, started))))
      await new Promise(resolve => setTimeout(resolve, 100))
    }
    t.same(seen.filter(p => p.connect === 200), [], `round ${round}: no CONNECT for the gone ID was accepted`)
    const readyTooSoon = seen.filter(p => p.readyWithOldCopy || ((p.ready === 200 || p.redisUp === '1') && p.connect === 200))
    t.same(readyTooSoon, [], `round ${round}: no node said ready or redis_up 1 while it still held the gone ID`)
    // Each node is ready again, and refuses the ID as unknown, well before the periodic re-read.
    for (const node of nodes) {
      const mine = seen.filter(p => p.node === node.name)
      const last = mine.at(-1)!
      t.match(last, { ready: 200, redisUp: '1' }, `round ${round}: ${node.name} ready again`)
      t.not(last.connect, 200, `round ${round}: ${node.name} refuses the ID`)
      const firstReady = mine.find(p => p.ready === 200)
      t.ok(firstReady !== undefined && firstReady.at < 1500, `round ${round}: ${node.name} ready again ${firstReady?.at} ms after Redis was back`)
      t.equal(node.app.rendezvous.registry.get(id), undefined, `round ${round}: ${node.name} dropped the ID`)
    }
    await parked.untilClosed(5000)
  }
})
