import t from 'tap'
import { Redis } from 'ioredis'
import { until } from '../helpers/until'
import { createV1Token } from '../../lib/tokens/v1'
import { createTotp } from '../../lib/tokens/totp'
import { startNode } from './nodes'
import { openWire, statusOf } from '../helpers/wire'
import { redisMissing, startRedis } from './redis-server'

// Skipped only where redis-server is not installed; .ci/run installs it.
const skip = redisMissing() ?? false

async function connectStatus (port: number, id: string, token: string): Promise<number | undefined> {
  const wire = await openWire(port, false)
  wire.write(`CONNECT uuid:${id}?response=${token} HTTP/1.1\r\nHost: h\r\n\r\n`)
  await wire.untilText('\r\n\r\n')
  wire.destroy()
  return statusOf(wire.text)
}

/*
 * A Redis that restarts from an older snapshot has forgotten the tokens taken
 * since, and the nodes took them again: a v1 token and a TOTP code accepted
 * before the restart were accepted a second time, on the node that had
 * accepted them too. The replay cache never forgets a token inside its window.
 */
t.test('tokens accepted before Redis restarted from an older snapshot stay refused on every node', { skip }, async t => {
  const redis = await startRedis(t)
  const a = await startNode('a', redis.url, { totp: 'strict' })
  const b = await startNode('b', redis.url, { totp: 'strict' })
  t.teardown(async () => { await a.close(); await b.close() })
  const { id, secret } = await a.app.rendezvous.registry.add({ id: 'hub-restore' })
  await until(() => b.app.rendezvous.registry.get(id) !== undefined, 2000, 'the ID on b')
  // The snapshot holds the ID and none of the tokens below.
  const admin = new Redis(redis.url, { lazyConnect: true })
  await admin.connect()
  await admin.save()
  admin.disconnect()

  const v1 = createV1Token(id, secret)
  const totp = createTotp(secret)
  t.equal(await connectStatus(a.port, id, v1), 200, 'a takes the v1 token')
  t.equal(await connectStatus(b.port, id, totp), 200, 'b takes the TOTP code')
  t.equal(await connectStatus(b.port, id, v1), 401, 'and b refuses the v1 token, before the restart')

  await redis.crash()
  await redis.start()
  await until(() => a.app.rendezvous.reachable() && b.app.rendezvous.reachable(), 10_000, 'both nodes ready again')
  // Until each node has written its tokens back, it refuses CONNECTs with 503; then the replays are 401.
  const settled = async (port: number, token: string): Promise<number | undefined> => {
    let status: number | undefined
    await until(async () => { status = await connectStatus(port, id, token); return status !== 503 }, 5000, 'an answer other than 503')
    return status
  }
  t.equal(await settled(a.port, v1), 401, 'a refuses the v1 token it took before')
  t.equal(await settled(b.port, v1), 401, 'so does b')
  t.equal(await settled(a.port, totp), 401, 'a refuses the TOTP code b took before')
  t.equal(await settled(b.port, totp), 401, 'so does b')
  t.equal(await connectStatus(a.port, id, createV1Token(id, secret)), 200, 'a new token is taken')
})

t.test('a node that holds replayCacheSize live tokens refuses new ones with 503 rather than forget one', { skip }, async t => {
  const redis = await startRedis(t)
  // One ID fills it: its share is off.
  const a = await startNode('a', redis.url, { replayCacheSize: 2, replayCachePerId: 0 })
  t.teardown(async () => { await a.close() })
  const { id, secret } = await a.app.rendezvous.registry.add({ id: 'hub-full' })
  t.equal(await connectStatus(a.port, id, createV1Token(id, secret)), 200)
  t.equal(await connectStatus(a.port, id, createV1Token(id, secret)), 200)
  t.equal(await connectStatus(a.port, id, createV1Token(id, secret)), 503, 'the third, with two live, is refused')
})

t.test('an app\'s own ioredis client keeps no listener of a closed node, whichever replay cache it used', { skip }, async t => {
  const redis = await startRedis(t)
  const client = new Redis(redis.url)
  t.teardown(() => { client.disconnect() })
  await new Promise(resolve => client.once('ready', resolve))
  const before = { close: client.listenerCount('close'), ready: client.listenerCount('ready') }
  for (const plugin of [{}, { replayCache: { remember: async () => 'fresh' as const } }]) {
    const node = await startNode('a', client as unknown as string, plugin)
    await node.close()
    t.same({ close: client.listenerCount('close'), ready: client.listenerCount('ready') }, before, Object.keys(plugin).join() || 'the default cache')
  }
})
