import { createRequire } from 'node:module'
import { dirname, sep } from 'node:path'
import t from 'tap'
import Fastify from 'fastify'
import { Cluster, Redis } from 'ioredis'
import rendezvous from '../../lib/index'
import { isRedisClient, scanTargets, type RedisClient } from '../../lib/cluster/redis-connection'
import { until } from '../helpers/until'
import { CLUSTER_SECRET, exchange, startNode } from './nodes'
import { redisMissing, startRedis } from './redis-server'

// Skipped only where redis-server is not installed; .ci/run installs it.
const skip = redisMissing() ?? false

/**
 * A second copy of ioredis, loaded apart from the one the package uses: its
 * classes are other classes, as those of another ioredis major (ioredis 6,
 * which @fastify/redis 9 brings) are. The first copy stays in the cache.
 */
function anotherIoredis (): typeof import('ioredis') {
  const load = createRequire(__filename)
  const root = dirname(load.resolve('ioredis/package.json')) + sep
  const cached = Object.keys(load.cache).filter(key => key.startsWith(root))
  const kept = cached.map(key => [key, load.cache[key]] as const)
  for (const key of cached) Reflect.deleteProperty(load.cache, key)
  try {
    return load('ioredis') as typeof import('ioredis')
  } finally {
    for (const [key, module] of kept) load.cache[key] = module
  }
}

const cluster = { secret: CLUSTER_SECRET, nodeId: 'a' }

async function registrationError (redis: unknown): Promise<{ code?: string, message: string } | undefined> {
  const app = Fastify()
  try {
    await app.register(rendezvous, { redis: redis as string, cluster })
    return undefined
  } catch (err) {
    return err as { code?: string, message: string }
  } finally {
    await app.close().catch(() => {})
  }
}

t.test('the redis option takes an ioredis client by its members, and refuses what lacks one', async t => {
  const foreign = anotherIoredis()
  t.not(foreign.Redis, Redis, 'a copy with classes of its own')
  const lazy = { lazyConnect: true, enableOfflineQueue: false }
  const clients = [new Redis(lazy), new Cluster([{ host: '127.0.0.1', port: 1 }], lazy), new foreign.Redis(lazy), new foreign.Cluster([{ host: '127.0.0.1', port: 1 }], lazy)]
  t.teardown(() => { for (const c of clients) c.disconnect() })
  const names = ['Redis', 'Cluster', "another copy's Redis", "another copy's Cluster"]
  clients.forEach((client, i) => { t.ok(isRedisClient(client), names[i]) })
  // A state and a duplicate() were all the check asked for: this went on to fail inside the cluster's start.
  const notAClient = { status: 'ready', duplicate: () => notAClient, connect: async () => {}, disconnect: () => {}, on: () => notAClient, once: () => notAClient, removeListener: () => notAClient }
  const err = await registrationError(notAClient)
  t.equal(err?.code, 'FST_RENDEZVOUS_BAD_OPTION')
  t.equal(err?.message, 'Invalid rendezvous option: redis must be a URL or an ioredis client')
  const lacking = new foreign.Redis(lazy)
  t.teardown(() => { lacking.disconnect() })
  Object.defineProperty(lacking, 'hgetall', { value: undefined })
  t.equal((await registrationError(lacking))?.code, 'FST_RENDEZVOUS_BAD_OPTION', 'a client without one of the commands the cluster sends')
})

// The pass that withdraws stale parked counts walks every master of a Redis Cluster;
// told apart by class, another copy's Cluster was walked as one server, which holds a share of the keys only.
t.test("a Cluster of another copy of ioredis is walked master by master, as this copy's is", async t => {
  const foreign = anotherIoredis()
  const lazy = { lazyConnect: true }
  const clusters = [new Cluster([{ host: '127.0.0.1', port: 1 }], lazy), new foreign.Cluster([{ host: '127.0.0.1', port: 1 }], lazy)]
  const servers = [new Redis(lazy), new foreign.Redis(lazy)]
  t.teardown(() => { for (const c of [...clusters, ...servers]) c.disconnect() })
  const masters = [{ name: 'master 1' }, { name: 'master 2' }]
  for (const cluster of clusters) Object.defineProperty(cluster, 'nodes', { value: (role: string) => role === 'master' ? masters : [] })
  for (const cluster of clusters) t.same(scanTargets(cluster as unknown as RedisClient), masters)
  for (const server of servers) t.same(scanTargets(server as unknown as RedisClient), [server])
})

t.test('a client of another copy of ioredis runs a node: IDs, presence and forwarding through it', { skip }, async t => {
  const redis = await startRedis(t)
  const foreign = anotherIoredis()
  const client = new foreign.Redis(redis.url)
  t.teardown(() => { client.disconnect() })
  t.notOk(client instanceof Redis)
  const a = await startNode('a', client as unknown as string)
  t.teardown(async () => { await a.close() })
  const b = await startNode('b', redis.url)
  t.teardown(async () => { await b.close() })
  const record = await a.app.rendezvous.registry.add({ id: 'hub-foreign' })
  await until(() => b.app.rendezvous.registry.get('hub-foreign') !== undefined, 2000, 'the ID added through the foreign client, on b')
  const hidden = await a.park('hub-foreign', record.secret)
  await exchange(t, b, hidden, 'hub-foreign')
  t.equal(await client.hget('rendezvous:ids', 'hub-foreign').then(v => v === null ? 'none' : 'stored'), 'stored', 'the record went through the given client')
})
