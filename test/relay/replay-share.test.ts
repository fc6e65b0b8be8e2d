import t from 'tap'
import { createV1Token } from '../../lib/tokens/v1'
import { LogLines } from '../cluster/log-lines'
import { SECRET } from '../helpers/fixtures'
import { sample } from '../helpers/prometheus'
import { startRendezvous, type TestRendezvous } from '../helpers/rendezvous'
import { until } from '../helpers/until'
import { connectOnce, openWire, statusOf } from '../helpers/wire'

/*
 * The replay cache is shared by every ID. A hidden server with a valid
 * secret that parks and closes at speed must not fill it for every other
 * ID: past its share, its own CONNECTs get 503 while the cache is nearly
 * full, and the others still park.
 */

const IDS = ['hub-a', 'hub-b']

async function connect (relay: TestRendezvous, id: string): Promise<{ status: number, text: string }> {
  return await connectOnce(relay.port, id, createV1Token(id, SECRET))
}

/** Parks and closes `n` times for `id`; the statuses in order. */
async function churn (relay: TestRendezvous, id: string, n: number): Promise<number[]> {
  const statuses = []
  for (let i = 0; i < n; i++) statuses.push((await connect(relay, id)).status)
  return statuses
}

async function scrape (relay: TestRendezvous): Promise<string> {
  return await relay.app.rendezvous.metrics!.metrics()
}

async function ready (relay: TestRendezvous): Promise<{ status: number, body: unknown }> {
  const res = await fetch(`http://127.0.0.1:${relay.port}/readyz`)
  return { status: res.status, body: await res.json() }
}

t.test('one ID that parks and closes at speed cannot fill the replay cache for the others', async t => {
  // A share of 2 by default (a quarter of 8).
  const log = new LogLines()
  const relay = await startRendezvous({ ids: IDS, fastify: { logger: { level: 'info', stream: log } }, plugin: { replayCacheSize: 8, retryAfter: 7, readyPath: '/readyz' } })
  t.teardown(relay.close)
  t.same(await churn(relay, 'hub-a', 6), [200, 200, 200, 200, 200, 200], 'alone, A goes past its share while the cache has room')
  const refused = await connect(relay, 'hub-a')
  t.equal(refused.status, 503, 'the 7th would leave less than a share of room')
  t.match(refused.text, /\r\nRetry-After: 7\r\n/i)
  t.match(refused.text, /\r\nConnection: close\r\n/i)
  t.same(await churn(relay, 'hub-a', 3), [503, 503, 503], 'however often it tries')
  t.match(log.find('CONNECT refused')[0], { outcome: 'replay_share_full', reason: 'replay_share_full', id: 'hub-a', status: 503 }, 'the log names the ID')
  t.same(await churn(relay, 'hub-b', 2), [200, 200], 'B takes the last share of room')
  const metrics = await scrape(relay)
  t.equal(sample(metrics, 'rendezvous_connect_total{outcome="replay_share_full"}'), 4)
  t.equal(sample(metrics, 'rendezvous_refusals_total{side="hidden",reason="replay_share_full"}'), 4)
  t.equal(sample(metrics, 'rendezvous_connect_total{outcome="replay_cache_full"}'), undefined, 'the cache itself was never full for B')
  t.same(await ready(relay), { status: 503, body: { status: 'not ready', reasons: ['replay_cache_full'] } }, 'now it is full: no more tokens at all')
  t.equal((await connect(relay, 'hub-b')).status, 503)
  t.equal(sample(await scrape(relay), 'rendezvous_connect_total{outcome="replay_cache_full"}'), 1)
})

t.test('replayCachePerId 0 turns the share off: one ID fills the cache, and readiness says so until its tokens expire', async t => {
  // A token of a 1 s skew lives in the cache at most 7 s (its window and a 5 s margin).
  const relay = await startRendezvous({ ids: IDS, plugin: { replayCacheSize: 4, replayCachePerId: 0, tokenSkew: 1, readyPath: '/readyz' } })
  t.teardown(relay.close)
  t.same(await ready(relay), { status: 200, body: { status: 'ready' } })
  t.same(await churn(relay, 'hub-a', 4), [200, 200, 200, 200])
  t.equal((await connect(relay, 'hub-b')).status, 503)
  t.equal(sample(await scrape(relay), 'rendezvous_connect_total{outcome="replay_cache_full"}'), 1)
  t.same(await ready(relay), { status: 503, body: { status: 'not ready', reasons: ['replay_cache_full'] } })
  await until(async () => (await ready(relay)).status === 200, 10_000, 'ready once the tokens expire')
  t.equal((await connect(relay, 'hub-b')).status, 200)
})

t.test('CONNECTs of one ID sent at once do not overshoot its share', async t => {
  const relay = await startRendezvous({ ids: IDS, plugin: { replayCacheSize: 8 } })
  t.teardown(relay.close)
  const wires = await Promise.all(Array.from({ length: 20 }, async () => await openWire(relay.port, false)))
  for (const wire of wires) wire.write(`CONNECT uuid:hub-a?response=${createV1Token('hub-a', SECRET)} HTTP/1.1\r\nHost: h\r\n\r\n`)
  await Promise.all(wires.map(async wire => await wire.untilText('\r\n\r\n')))
  const statuses = wires.map(wire => statusOf(wire.text))
  for (const wire of wires) wire.destroy()
  t.equal(statuses.filter(s => s === 200).length, 6, `all but a share of 8: ${statuses.join(' ')}`)
  t.equal(statuses.filter(s => s === 503).length, 14)
  t.same(await churn(relay, 'hub-b', 2), [200, 200], 'the last share is still there for B')
})
