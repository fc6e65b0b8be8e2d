import t from 'tap'
import { Registry } from 'prom-client'
import { startRendezvous, untilParked, type TestRendezvous } from '../helpers/rendezvous'
import { statusOf, type WireClient } from '../helpers/wire'
import { sample } from '../helpers/prometheus'
import { until } from '../helpers/until'
import { LogLines } from '../cluster/log-lines'
import { createV1Token } from '../../lib/tokens/v1'
import { createTotp } from '../../lib/tokens/totp'
import { MemoryReplayCache } from '../../lib/stores/memory-replay-cache'
import type { ReplayCache, ReplayVerdict } from '../../lib/stores/replay-cache'
import { MemoryRegistry, type Registry as IdRegistry, type RendezvousOptions } from '../../lib/index'
import { OTHER_SECRET, SECRET } from '../helpers/fixtures'
import { openRedis } from '../../lib/cluster/redis-connection'
import { RedisRegistry } from '../../lib/cluster/redis-registry'
import { redisMissing, startRedis } from '../cluster/redis-server'

/*
 * A CONNECT whose token is being spent (the replay cache is Redis, a
 * journal, or the app's own store) while its ID is removed, or its secret
 * revoked by a rotation without overlap, must not be parked once the check
 * ends: removal refuses new CONNECTs, and a revoking rotation closes what was
 * parked with the old secret. Parked, it would be handed the next client of
 * that ID.
 */

type Test = Parameters<Parameters<typeof t.test>[0]>[0]

const REFUSED = /^HTTP\/1\.1 401 Unauthorized\r\n[^]*Connection: close\r\n[^]*\r\n\r\nauthentication failed\n$/
const THIRD_SECRET = 'MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U'
const REQUEST = 'GET /inbox HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="victim", realm="rendezvous", nonce="n", uri="/inbox", response="r"\r\n\r\n'

/** A replay cache that, while `holding`, answers only when let go: the registry can change while a token is being spent. */
class HeldCache implements ReplayCache {
  readonly inner = new MemoryReplayCache()
  readonly held: Array<() => void> = []
  holding = true

  async remember (key: string, ttlMs: number): Promise<ReplayVerdict> {
    if (this.holding) await new Promise<void>(resolve => this.held.push(resolve))
    return await this.inner.remember(key, ttlMs)
  }

  async untilHeld (): Promise<void> {
    await until(() => this.held.length > 0, 3000, 'a token being spent')
  }

  /** Lets every held token go, and answers the next ones at once. */
  release (): void {
    this.holding = false
    for (const go of this.held.splice(0)) go()
  }
}

interface Started { relay: TestRendezvous, cache: HeldCache, metrics: Registry, log: LogLines }

async function start (t: Test, plugin: RendezvousOptions = {}, ids = ['victim']): Promise<Started> {
  const cache = new HeldCache()
  const metrics = new Registry()
  const log = new LogLines()
  const relay = await startRendezvous({
    ids,
    fastify: { logger: { level: 'info', stream: log } },
    plugin: { replayCache: cache, totp: 'strict', metrics, waitTimeout: 300, retryAfter: 5, ...plugin }
  })
  t.teardown(relay.close)
  return { relay, cache, metrics, log }
}

async function sendConnect (relay: TestRendezvous, token: string): Promise<WireClient> {
  const c = await relay.open()
  c.write(`CONNECT uuid:victim?response=${token} HTTP/1.1\r\nHost: h\r\n\r\n`)
  return c
}

/** What a CONNECT was answered: the whole of a refusal, once closed; a 200 as soon as it is there. */
async function answered (connect: WireClient): Promise<string> {
  await connect.untilText('\r\n\r\n')
  if (statusOf(connect.text) !== 200) await connect.untilClosed()
  return connect.text
}

/** A client of `victim` that has sent its request. */
async function client (relay: TestRendezvous): Promise<WireClient> {
  const c = await relay.open()
  c.write(REQUEST)
  return c
}

/**
 * The status the relay answered a client with, or 'spliced' when its request
 * reached `connect` instead (what the old code did).
 */
async function answerTo (relay: TestRendezvous, connect: WireClient): Promise<number | 'spliced' | undefined> {
  const c = await client(relay)
  await until(() => c.text.includes('\r\n\r\n') || connect.text.includes('GET /inbox'), 5000, 'an answer')
  c.destroy()
  return connect.text.includes('GET /inbox') ? 'spliced' : statusOf(c.text)
}

/** What a refusal must leave behind: counted and logged as any failed authentication, with the reason. */
async function refusedAsUnauthorized (t: Test, { metrics, log }: Started, reason: string): Promise<void> {
  const scrape = await metrics.metrics()
  t.equal(sample(scrape, 'rendezvous_connect_total{outcome="unauthorized"}'), 1, 'counted as unauthorized')
  t.equal(sample(scrape, 'rendezvous_connect_total{outcome="parked"}'), undefined, 'never counted as parked')
  const failed = log.find('CONNECT authentication failed')
  t.equal(failed.length, 1)
  t.match(failed[0], { id: 'victim', reason })
  t.match(log.find('CONNECT refused'), [{ outcome: 'unauthorized', status: 401 }])
}

const kinds = [
  { kind: 'v1', token: (secret: string) => createV1Token('victim', secret) },
  { kind: 'TOTP', token: (secret: string) => createTotp(secret) }
]

for (const { kind, token } of kinds) {
  t.test(`${kind}: a rotation without overlap while the token is being spent gets the CONNECT 401, and no client is handed to it`, async t => {
    const s = await start(t)
    const connect = await sendConnect(s.relay, token(SECRET))
    await s.cache.untilHeld()
    await s.relay.registry.rotate('victim', { secret: OTHER_SECRET, overlapMs: 0 })
    s.cache.release()
    t.match(await answered(connect), REFUSED, '401, then closed; never 200')
    t.equal(s.relay.app.rendezvous.stats().parked, 0, 'nothing parked')
    await refusedAsUnauthorized(t, s, 'revoked')

    t.equal(await answerTo(s.relay, connect), 503, 'the next client of the ID finds no hidden server, not the revoked connection')

    // The ID's agent, with its new secret, is parked and gets the clients.
    const agent = await s.relay.park('victim', OTHER_SECRET)
    const next = await client(s.relay)
    await agent.untilText(REQUEST.replace(/Authorization: [^\r]*\r\n/, ''))
    t.pass('the next client is spliced to the agent')
    agent.destroy()
    next.destroy()
  })
}

t.test('an ID removed while its token is being spent: 401, and its clients get 404', async t => {
  const s = await start(t)
  const connect = await sendConnect(s.relay, createV1Token('victim', SECRET))
  await s.cache.untilHeld()
  t.equal(await s.relay.registry.remove('victim'), true)
  s.cache.release()
  t.match(await answered(connect), REFUSED)
  t.equal(s.relay.app.rendezvous.stats().parked, 0)
  await refusedAsUnauthorized(t, s, 'unknown_id')
  t.equal(await answerTo(s.relay, connect), 404)
})

t.test('an ID removed and added again with another secret while a token is being spent: 401', async t => {
  const s = await start(t)
  const connect = await sendConnect(s.relay, createV1Token('victim', SECRET))
  await s.cache.untilHeld()
  await s.relay.registry.remove('victim')
  await s.relay.registry.add({ id: 'victim', secret: OTHER_SECRET })
  s.cache.release()
  t.match(await answered(connect), REFUSED)
  await refusedAsUnauthorized(t, s, 'revoked')
  t.equal(await answerTo(s.relay, connect), 503)
})

t.test('an old secret still in its overlap, revoked while its token is being spent: 401', async t => {
  const s = await start(t)
  await s.relay.registry.rotate('victim', { secret: OTHER_SECRET, overlapMs: 600_000 })
  const connect = await sendConnect(s.relay, createV1Token('victim', SECRET))
  await s.cache.untilHeld()
  await s.relay.registry.rotate('victim', { secret: THIRD_SECRET, overlapMs: 0 })
  s.cache.release()
  t.match(await answered(connect), REFUSED)
  await refusedAsUnauthorized(t, s, 'revoked')
})

t.test('a rotation with an overlap while the token is being spent keeps the old secret: the CONNECT is parked and gets clients', async t => {
  const s = await start(t)
  const connect = await sendConnect(s.relay, createV1Token('victim', SECRET))
  await s.cache.untilHeld()
  await s.relay.registry.rotate('victim', { secret: OTHER_SECRET, overlapMs: 600_000 })
  s.cache.release()
  await connect.untilText('\r\n\r\n')
  t.equal(connect.text, 'HTTP/1.1 200 OK\r\n\r\n')
  await untilParked(s.relay, 1)
  const c = await client(s.relay)
  await connect.untilText('GET /inbox')
  t.pass('the next client is spliced to it')
  connect.destroy()
  c.destroy()
})

t.test('a CONNECT with the current secret is not refused when another ID is revoked meanwhile', async t => {
  const s = await start(t)
  await s.relay.registry.add({ id: 'bystander', secret: SECRET })
  const connect = await sendConnect(s.relay, createV1Token('victim', SECRET))
  await s.cache.untilHeld()
  await s.relay.registry.rotate('bystander', { secret: OTHER_SECRET, overlapMs: 0 })
  await s.relay.registry.remove('bystander')
  s.cache.release()
  await connect.untilText('\r\n\r\n')
  t.equal(connect.text, 'HTTP/1.1 200 OK\r\n\r\n')
  connect.destroy()
})

t.test('a custom verifier: an ID removed while it decides gets the CONNECT 401', async t => {
  let decide: ((ok: boolean) => void) | undefined
  const s = await start(t, { verifyToken: async () => await new Promise<boolean>(resolve => { decide = resolve }) })
  const connect = await sendConnect(s.relay, 'letmein')
  await until(() => decide !== undefined, 3000, 'the verifier asked')
  await s.relay.registry.remove('victim')
  decide?.(true)
  t.match(await answered(connect), REFUSED)
  await refusedAsUnauthorized(t, s, 'unknown_id')
  t.equal(await answerTo(s.relay, connect), 404)
})

/** A Redis registry on connections of its own: a node's mirror, or another node (or `ids` on the command line) writing. */
async function redisRegistry (t: Test, url: string): Promise<RedisRegistry> {
  const conn = openRedis(url)
  await conn.connect(5000)
  const registry = new RedisRegistry(conn)
  await registry.ready()
  t.teardown(async () => { await registry.close(); await conn.close() })
  return registry
}

t.test('cluster: a revocation made on another node, reaching this node\'s mirror while the token is being spent: 401', { skip: redisMissing() ?? false }, async t => {
  const server = await startRedis(t)
  const elsewhere = await redisRegistry(t, server.url)
  await elsewhere.add({ id: 'victim', secret: SECRET })
  const mirror = await redisRegistry(t, server.url)
  const s = await start(t, { registry: mirror }, [])
  const connect = await sendConnect(s.relay, createV1Token('victim', SECRET))
  await s.cache.untilHeld()
  await elsewhere.rotate('victim', { secret: OTHER_SECRET, overlapMs: 0 })
  await until(() => mirror.get('victim')?.secret === OTHER_SECRET, 3000, 'the rotation in the mirror')
  s.cache.release()
  t.match(await answered(connect), REFUSED)
  await refusedAsUnauthorized(t, s, 'revoked')
  t.equal(await answerTo(s.relay, connect), 503)
})

for (const mode of ['throws', 'returns a promise'] as const) {
  t.test(`a registry whose get() ${mode} once the token is being spent: 500 for the CONNECT, the app lives on`, async t => {
    const inner = new MemoryRegistry()
    await inner.add({ id: 'victim', secret: SECRET })
    let failing = false
    const registry: IdRegistry = {
      ready: async () => await inner.ready(),
      get: (id: string) => {
        if (!failing) return inner.get(id)
        if (mode === 'throws') throw new Error('store down')
        return Promise.resolve(inner.get(id)) as never
      },
      list: async () => await inner.list(),
      add: async (input) => await inner.add(input),
      remove: async (id) => await inner.remove(id),
      onRemove: (listener) => inner.onRemove(listener),
      close: async () => await inner.close()
    }
    const s = await start(t, { registry }, [])
    const connect = await sendConnect(s.relay, createV1Token('victim', SECRET))
    await s.cache.untilHeld()
    failing = true
    s.cache.release()
    t.match(await answered(connect), /^HTTP\/1\.1 500 Internal Server Error\r\n[^]*\r\n\r\ninternal error\n$/)
    t.equal(s.relay.app.rendezvous.stats().parked, 0)
    // An unhandled rejection would end this process a tick later.
    await new Promise(resolve => setTimeout(resolve, 50))
    failing = false
    const agent = await s.relay.park('victim')
    t.ok(agent, 'parks again once the store is back')
    agent.destroy()
  })
}
