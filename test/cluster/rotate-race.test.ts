import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { openRedis, type RedisClient } from '../../lib/cluster/redis-connection'
import { RedisRegistry, type RedisRegistryOptions } from '../../lib/cluster/redis-registry'
import { parseRecord } from '../../lib/cluster/stored-record'
import type { IdentityRecord } from '../../lib/registry/registry'
import { until } from '../helpers/until'
import { redisMissing, startRedis } from './redis-server'

// Skipped only where redis-server is not installed; .ci/run installs it.
const skip = redisMissing() ?? false
const S1 = 'KRUGS4ZANFZSAYJAORSXG5BAONSWG4TF'
const S2 = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP'

/**
 * A registry on connections of its own, as on another node. `between`, when
 * set, runs once right after the registry's next read of an ID and before
 * it writes: another writer getting in between, deterministically.
 */
async function registry (t: Test, url: string, opts: RedisRegistryOptions = {}): Promise<{ registry: RedisRegistry, reads: () => number, between: (job: () => Promise<unknown>) => void }> {
  const conn = openRedis(url)
  await conn.connect(5000)
  let reads = 0
  let job: (() => Promise<unknown>) | undefined
  const client = new Proxy(conn.client, {
    get (target, prop) {
      const value: unknown = Reflect.get(target, prop, target)
      if (typeof value !== 'function') return value
      if (prop !== 'hget') return value.bind(target)
      return async (...args: unknown[]) => {
        const read: unknown = await value.apply(target, args)
        reads++
        const now = job
        job = undefined
        await now?.()
        return read
      }
    }
  }) as RedisClient
  const reg = new RedisRegistry({ ...conn, client }, opts)
  await reg.ready()
  t.teardown(async () => { await reg.close(); await conn.close() })
  return { registry: reg, reads: () => reads, between: (fn) => { job = fn } }
}

async function setup (t: Test): Promise<{ url: string, redis: Redis, stored: (id: string) => Promise<IdentityRecord | undefined> }> {
  const server = await startRedis(t)
  const redis = new Redis(server.port, '127.0.0.1')
  t.teardown(() => { redis.disconnect() })
  const stored = async (id: string): Promise<IdentityRecord | undefined> => {
    const json = await redis.hget('rendezvous:ids', id)
    return json === null ? undefined : parseRecord(id, json)
  }
  return { url: server.url, redis, stored }
}

t.test('a rotation that lost the race to another reads again and rotates the winner\'s record: nothing is lost', { skip }, async t => {
  const { url, stored } = await setup(t)
  const one = await registry(t, url)
  const two = await registry(t, url)
  const added = await one.registry.add({ id: 'hub-1' })
  await until(() => two.registry.get('hub-1') !== undefined, 2000, 'the ID on two')

  let first: IdentityRecord | undefined
  two.between(async () => { first = await one.registry.rotate('hub-1', { overlapMs: 60_000, secret: S1 }) })
  const second = await two.registry.rotate('hub-1', { overlapMs: 60_000, secret: S2 })
  t.equal(two.reads(), 2, 'the compare-and-set failed once, and the rotation read again')
  t.same(first, { id: 'hub-1', secret: S1, createdAt: added.createdAt, previousSecret: added.secret, previousExpiresAt: first?.previousExpiresAt })
  const olderSecrets = [{ secret: added.secret, expiresAt: first?.previousExpiresAt }]
  t.same(second, { id: 'hub-1', secret: S2, createdAt: added.createdAt, previousSecret: S1, previousExpiresAt: second?.previousExpiresAt, olderSecrets }, 'built on the winner\'s record, which keeps its own old secret')
  t.same(await stored('hub-1'), second)
  await until(() => one.registry.get('hub-1')?.secret === S2, 2000, 'the last rotation in one\'s mirror')
  t.same(one.registry.get('hub-1'), second)
  t.same(two.registry.get('hub-1'), second)
})

t.test('two registries rotating one ID at once: both resolve and the stored record chains one onto the other', { skip }, async t => {
  const { url, stored } = await setup(t)
  const one = await registry(t, url)
  const two = await registry(t, url)
  // An ID a round: each rotation keeps the other's secret, and one ID holds only so many old secrets.
  const ids = Array.from({ length: 20 }, (_, round) => `hub-2-${round}`)
  for (const [round, id] of ids.entries()) {
    await one.registry.add({ id })
    const [a, b] = await Promise.all([
      one.registry.rotate(id, { overlapMs: 60_000 }),
      two.registry.rotate(id, { overlapMs: 60_000 })
    ])
    if (a === undefined || b === undefined) throw new Error(`round ${round}: a rotation found no ID`)
    const last = await stored(id)
    const [winner, loser] = last?.secret === a.secret ? [a, b] : [b, a]
    if (!(last?.secret === winner.secret && last.previousSecret === loser.secret)) {
      t.fail(`round ${round}: the stored record ${JSON.stringify(last)} lost one of ${a.secret} and ${b.secret}`)
      return
    }
  }
  t.pass('in 20 rounds, the last rotation always kept the other one\'s secret as its previous secret')
  const last = ids[ids.length - 1]!
  await until(() => one.registry.get(last)?.secret === two.registry.get(last)?.secret, 2000, 'both mirrors agreeing')
  t.same(one.registry.get(last), await stored(last))
})

t.test('a rotation racing a removal never brings the ID back', { skip }, async t => {
  const { url, redis, stored } = await setup(t)
  const one = await registry(t, url)
  const two = await registry(t, url)

  t.test('a removal between the read and the write', async t => {
    await one.registry.add({ id: 'hub-3' })
    await until(() => two.registry.get('hub-3') !== undefined, 2000, 'the ID on two')
    let removed = false
    two.between(async () => { removed = await one.registry.remove('hub-3') })
    t.equal(await two.registry.rotate('hub-3', { overlapMs: 60_000 }), undefined, 'the rotation finds no ID')
    t.ok(removed)
    t.equal(await redis.hexists('rendezvous:ids', 'hub-3'), 0, 'not in Redis')
    await until(() => [one, two].every(r => r.registry.get('hub-3') === undefined), 2000, 'gone from both mirrors')
  })

  t.test('rotations and removals at once', async t => {
    for (let round = 0; round < 20; round++) {
      const id = `race-${round}`
      await one.registry.add({ id })
      const [rotated, removed] = await Promise.all([
        two.registry.rotate(id, { overlapMs: 60_000 }),
        one.registry.remove(id)
      ])
      t.ok(removed, `round ${round}: the removal found the ID`)
      t.equal(await stored(id), undefined, `round ${round}: the ID stays removed${rotated === undefined ? '' : ' (rotated first)'}`)
    }
    await until(() => [one, two].every(r => r.registry.get('race-19') === undefined), 2000, 'no mirror holding the last ID')
    t.equal((await one.registry.list()).length, 0, 'no ID came back')
  })
})

t.test('a rotation that keeps losing gives up after its attempts with a 503 error', { skip }, async t => {
  const { url, stored } = await setup(t)
  const one = await registry(t, url)
  const two = await registry(t, url, { rotateAttempts: 3 })
  await one.registry.add({ id: 'hub-4' })
  const busy = (): void => {
    two.between(async () => {
      await one.registry.rotate('hub-4', { overlapMs: 0 })
      busy()
    })
  }
  busy()
  await t.rejects(two.registry.rotate('hub-4', { overlapMs: 0, secret: S1 }), { code: 'FST_RENDEZVOUS_REGISTRY_CONFLICT', statusCode: 503 })
  t.equal(two.reads(), 3)
  t.not((await stored('hub-4'))?.secret, S1, 'the losing rotation wrote nothing')
})
