import t from 'tap'
import { join } from 'node:path'
import { Registry } from 'prom-client'
import { startRendezvous, untilParked, type TestRendezvous } from '../helpers/rendezvous'
import { statusOf, type WireClient } from '../helpers/wire'
import { sample } from '../helpers/prometheus'
import { LogLines } from '../cluster/log-lines'
import { createV1Token } from '../../lib/tokens/v1'
import { createTotp } from '../../lib/tokens/totp'
import { SECRET } from '../helpers/fixtures'
import { HeldCache } from '../helpers/held-replay-cache'

/* A token answered 503 because the lot is full was never accepted: the same token must be good once there is room. */

const FULL = /^HTTP\/1\.1 503 Service Unavailable\r\n[^]*\r\nRetry-After: 5\r\n[^]*\r\n\r\ntoo many parked connections\n$/

async function connect (relay: TestRendezvous, token: string, id = 'hub-1'): Promise<WireClient> {
  const c = await relay.open()
  c.write(`CONNECT uuid:${id}?response=${token} HTTP/1.1\r\nHost: h\r\n\r\n`)
  await c.untilText('\r\n\r\n')
  return c
}

async function refused (relay: TestRendezvous, token: string, id = 'hub-1'): Promise<string> {
  const c = await connect(relay, token, id)
  await c.untilClosed()
  return c.text
}

const kinds = [
  { kind: 'v1', token: () => createV1Token('hub-1', SECRET) },
  { kind: 'TOTP (strict)', token: () => createTotp(SECRET) }
]

for (const { kind, token } of kinds) {
  for (const store of ['memory', 'journal'] as const) {
    t.test(`${kind}, ${store} replay cache: a token refused because the lot is full is accepted once there is room`, async t => {
      // A dir of its own that does not exist yet: the relay makes it private, as a data dir must be.
      const dataDir = store === 'journal' ? join(t.testdir(), 'data') : undefined
      const relay = await startRendezvous({ plugin: { maxParkedPerId: 1, retryAfter: 5, totp: 'strict', dataDir } })
      t.teardown(relay.close)
      const blocker = await relay.park('hub-1')
      await untilParked(relay, 1)
      const tkn = token()

      t.match(await refused(relay, tkn), FULL, 'lot full: 503 with Retry-After')
      blocker.destroy()
      await untilParked(relay, 0)

      const retry = await connect(relay, tkn)
      t.equal(retry.text, 'HTTP/1.1 200 OK\r\n\r\n', 'the same token, obeying Retry-After, is parked')
      await untilParked(relay, 1)
      retry.destroy()
      await untilParked(relay, 0)
      t.equal(statusOf(await refused(relay, tkn)), 401, 'accepted once, it is spent')
    })
  }
}

t.test('the same token twice at once, with room for both: one 200 and one 401', async t => {
  const relay = await startRendezvous({ plugin: { totp: 'strict' } })
  t.teardown(relay.close)
  for (const [kind, tkn] of [['v1', createV1Token('hub-1', SECRET)], ['TOTP', createTotp(SECRET)]]) {
    const [a, b] = [await relay.open(), await relay.open()]
    const head = `CONNECT uuid:hub-1?response=${tkn} HTTP/1.1\r\nHost: h\r\n\r\n`
    a.write(head)
    b.write(head)
    await Promise.all([a.untilText('\r\n\r\n'), b.untilText('\r\n\r\n')])
    t.same([statusOf(a.text), statusOf(b.text)].sort(), [200, 401], kind)
    a.destroy()
    b.destroy()
    await untilParked(relay, 0)
  }
})

t.test('a lot that fills while tokens are being spent parks no more than its limit', async t => {
  const cache = new HeldCache()
  const relay = await startRendezvous({ plugin: { maxParkedPerId: 1, replayCache: cache } })
  t.teardown(relay.close)
  const [a, b] = [await relay.open(), await relay.open()]
  a.write(`CONNECT uuid:hub-1?response=${createV1Token('hub-1', SECRET)} HTTP/1.1\r\nHost: h\r\n\r\n`)
  b.write(`CONNECT uuid:hub-1?response=${createV1Token('hub-1', SECRET)} HTTP/1.1\r\nHost: h\r\n\r\n`)
  const until = async (): Promise<void> => { while (cache.held.length < 2) await new Promise(resolve => setTimeout(resolve, 10)) }
  await until()
  for (const release of cache.held) release()
  await Promise.all([a.untilText('\r\n\r\n'), b.untilText('\r\n\r\n')])
  t.same([statusOf(a.text), statusOf(b.text)].sort(), [200, 503], 'both had room when checked; one fits')
  t.equal(relay.app.rendezvous.stats().parked, 1)
  a.destroy()
  b.destroy()
})

t.test('a custom verifier that cannot decide now is counted and logged as verifier_unavailable', async t => {
  const metrics = new Registry()
  const log = new LogLines()
  const relay = await startRendezvous({
    fastify: { logger: { level: 'info', stream: log } },
    plugin: { metrics, retryAfter: 5, verifyToken: async () => ({ ok: false, reason: 'token service down', status: 503 }) }
  })
  t.teardown(relay.close)
  const text = await refused(relay, 'abc')
  t.match(text, /^HTTP\/1\.1 503 Service Unavailable\r\n[^]*\r\nRetry-After: 5\r\n[^]*\r\n\r\ntry again later\n$/)
  const scrape = await metrics.metrics()
  t.equal(sample(scrape, 'rendezvous_connect_total{outcome="verifier_unavailable"}'), 1)
  t.equal(sample(scrape, 'rendezvous_refusals_total{side="hidden",reason="verifier_unavailable"}'), 1)
  t.equal(sample(scrape, 'rendezvous_connect_total{outcome="replay_cache_full"}'), undefined, 'not a full replay cache')
  const lines = log.find('CONNECT refused')
  t.equal(lines.length, 1)
  t.match(lines[0], { outcome: 'verifier_unavailable', status: 503, reason: 'token service down' })
})

t.test('a custom verifier judges a token before the lot is checked, as before', async t => {
  const seen: string[] = []
  const relay = await startRendezvous({ plugin: { maxParkedPerId: 1, retryAfter: 5, verifyToken: (id, token) => { seen.push(token); return token === 'letmein' } } })
  t.teardown(relay.close)
  const parked = await connect(relay, 'letmein')
  t.equal(statusOf(parked.text), 200)
  t.match(await refused(relay, 'letmein'), FULL)
  t.same(seen, ['letmein', 'letmein'], 'asked about the CONNECT that the full lot then refused')
  parked.destroy()
})
