import t from 'tap'
import { statusOf, type WireClient } from '../helpers/wire'
import { until } from '../helpers/until'
import { createV1Token } from '../../lib/tokens/v1'
import { createTotp, TOTP_STEP_MS } from '../../lib/tokens/totp'
import { redisMissing, startRedis, type TestRedis } from './redis-server'
import { startNode, type TestNode } from './nodes'

// Skipped only where redis-server is not installed; .ci/run installs it.
const skip = redisMissing() ?? false

// No liveness ping or re-read while Redis is held, and room for the commands held with it.
const TIMERS = { heartbeat: 30_000, presenceTtl: 60_000, resyncInterval: 30_000, commandTimeout: 5000 }

/**
 * Opens one connection per head across `nodes` (in turn), then sends every
 * head while Redis is held (SIGSTOP) until every node has read its heads
 * (`event`: 'connect' for CONNECTs, 'request' for the mobile side). So every
 * request is in flight at once, with its first Redis command queued, as
 * under load; resolves with each answer's status and the open sockets
 * (parked ones stay open).
 */
async function allAtOnce (redis: TestRedis, nodes: TestNode[], heads: string[], event: 'connect' | 'request' = 'connect'): Promise<{ statuses: number[], wires: WireClient[] }> {
  const wires = await Promise.all(heads.map(async (_, i) => await nodes[i % nodes.length]!.open()))
  let seen = 0
  const count = (): void => { seen++ }
  for (const node of nodes) node.app.server.on(event, count)
  redis.pause()
  try {
    wires.forEach((wire, i) => { wire.write(heads[i]!) })
    await until(() => seen === heads.length, 5000, 'every head read by its node')
  } finally {
    redis.resume()
    for (const node of nodes) node.app.server.removeListener(event, count)
  }
  await Promise.all(wires.map(async wire => { await wire.untilText('\r\n\r\n', 15_000) }))
  return { statuses: wires.map(wire => statusOf(wire.text) ?? 0), wires }
}

function tally (statuses: number[]): Record<number, number> {
  const out: Record<number, number> = {}
  for (const status of statuses) out[status] = (out[status] ?? 0) + 1
  return out
}

/** `n` six-digit codes, none of them good for `secret` now or in the steps either side. */
function wrongCodes (secret: string, n: number): string[] {
  const now = Date.now()
  const good = new Set([-2, -1, 0, 1, 2].map(step => createTotp(secret, now + step * TOTP_STEP_MS)))
  const codes: string[] = []
  for (let i = 0; codes.length < n; i++) {
    const code = String(100_000 + i * 3_571).padStart(6, '0')
    if (!good.has(code)) codes.push(code)
  }
  return codes
}

function connectHead (id: string, token: string): string {
  return `CONNECT uuid:${id}?response=${token} HTTP/1.1\r\nHost: h\r\n\r\n`
}

async function closeAll (wires: WireClient[]): Promise<void> {
  for (const wire of wires) wire.destroy()
  await Promise.all(wires.map(async wire => { await wire.untilClosed() }))
}

t.test('concurrent wrong CONNECTs for one ID from one address: at most the limit are judged, across the cluster; a good agent pool still parks', { skip }, async t => {
  const redis = await startRedis(t)
  const a = await startNode('a', redis.url, {}, undefined, TIMERS)
  const b = await startNode('b', redis.url, {}, undefined, TIMERS)
  t.teardown(async () => { await a.close(); await b.close() })
  const { secret: totpSecret } = await a.app.rendezvous.registry.add({ id: 'totp-hub' })
  const { secret: v1Secret } = await a.app.rendezvous.registry.add({ id: 'v1-hub' })
  const { secret: poolSecret } = await a.app.rendezvous.registry.add({ id: 'pool-hub' })
  await until(() => b.app.rendezvous.registry.get('pool-hub') !== undefined, 10_000, 'the IDs on b')

  const guesses = await allAtOnce(redis, [a], wrongCodes(totpSecret, 250).map(code => connectHead('totp-hub', code)))
  t.same(tally(guesses.statuses), { 401: 10, 429: 240 }, '250 wrong TOTP codes at one node: 10 judged (the per-pair limit), 240 cooled off')
  t.match(guesses.wires.find(wire => statusOf(wire.text) === 429)?.text, /\r\nRetry-After: \d+\r\n/, 'a 429 says when to come back')
  await closeAll(guesses.wires)

  t.not(v1Secret, poolSecret)
  const v1 = await allAtOnce(redis, [a, b], Array.from({ length: 200 }, () => connectHead('v1-hub', createV1Token('v1-hub', poolSecret))))
  t.same(tally(v1.statuses), { 401: 10, 429: 190 }, '200 v1 tokens made with a wrong secret, spread over two nodes: 10 judged in all')
  await closeAll(v1.wires)

  // 20 failures from this address so far, of its 100; the pair counter for pool-hub (10) is fresh,
  // so 64 CONNECTs at once are six times its limit in flight.
  const pool = await allAtOnce(redis, [a, b], Array.from({ length: 64 }, () => connectHead('pool-hub', createV1Token('pool-hub', poolSecret))))
  t.same(tally(pool.statuses), { 200: 64 }, 'an agent pool of 64 with good tokens, at once, over two nodes: all parked')
  await until(() => a.app.rendezvous.stats().parked + b.app.rendezvous.stats().parked === 64, 10_000, '64 parked')
  await closeAll(pool.wires)
  await until(() => a.app.rendezvous.stats().parked + b.app.rendezvous.stats().parked === 0, 10_000, 'none parked')

  // Agents behind one NAT address: three pools at once, more than the address counter (100) has room for.
  const ids = ['nat-1', 'nat-2', 'nat-3']
  const secrets = await Promise.all(ids.map(async id => (await a.app.rendezvous.registry.add({ id })).secret))
  await until(() => b.app.rendezvous.registry.get('nat-3') !== undefined, 10_000, 'the NAT IDs on b')
  const started = Date.now()
  const nat = await allAtOnce(redis, [a, b], Array.from({ length: 192 }, (_, i) => connectHead(ids[i % 3]!, createV1Token(ids[i % 3]!, secrets[i % 3]!))))
  t.same(tally(nat.statuses), { 200: 192 }, 'three pools of 64 at once from one address: all parked')
  t.comment(`parked in ${Date.now() - started} ms`)
  await closeAll(nat.wires)
})

t.test('concurrent requests naming unknown IDs from one address: at most the limit get 404', { skip }, async t => {
  const redis = await startRedis(t)
  const a = await startNode('a', redis.url, {}, undefined, TIMERS)
  t.teardown(async () => { await a.close() })
  const heads = Array.from({ length: 250 }, (_, i) => `GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="nobody-${i}"\r\n\r\n`)
  const probes = await allAtOnce(redis, [a], heads, 'request')
  t.same(tally(probes.statuses), { 404: 100, 429: 150 }, 'the unknown-ID limit (100) holds under concurrency')
  await closeAll(probes.wires)
})
