import t, { type Test } from 'tap'
import { Writable } from 'node:stream'
import { MemoryThrottleStore, type ThrottleStore } from '../../lib/index'
import { createV1Token } from '../../lib/tokens/v1'
import { createTotp } from '../../lib/tokens/totp'
import { OTHER_SECRET, SECRET } from '../helpers/fixtures'
import { sample } from '../helpers/prometheus'
import { startRendezvous, type TestRendezvous } from '../helpers/rendezvous'
import { statusOf } from '../helpers/wire'

/*
 * An app's throttleStore whose calls reject (its database down) used to get
 * a CONNECT with a good token 500 `internal error`, with no Retry-After, an
 * error line per CONNECT, /readyz still ready; a mobile client naming a
 * known ID had its connection reset without an answer, one naming an
 * unknown ID got Fastify's 500. Now each is a 503 with Retry-After
 * (throttle_unavailable), warned about once a minute, and /readyz says
 * throttle_store_failing, as for a replay store that fails. It fails
 * closed: no token is judged while failures cannot be counted.
 */

type Method = 'hit' | 'block' | 'blockedFor' | 'refund'

/** A memory store whose listed methods reject with `store down` while they are in `down`. */
function flakyStore (down: Set<Method>, refund = true): ThrottleStore {
  const inner = new MemoryThrottleStore()
  const guard = (method: Method): void => { if (down.has(method)) throw new Error('store down') }
  const store: ThrottleStore = {
    hit: async (key, windowMs) => { guard('hit'); return await inner.hit(key, windowMs) },
    block: async (key, ms) => { guard('block'); await inner.block(key, ms) },
    blockedFor: async key => { guard('blockedFor'); return await inner.blockedFor(key) }
  }
  if (refund) store.refund = async key => { guard('refund'); await inner.refund(key) }
  return store
}

interface Logged { level: number, msg: string, reason?: string, outcome?: string }

async function start (t: Test, store: ThrottleStore, plugin: object = {}): Promise<{ relay: TestRendezvous, lines: Logged[] }> {
  const lines: Logged[] = []
  const stream = new Writable({ write (chunk: Buffer, _enc, done) { lines.push(JSON.parse(chunk.toString())); done() } })
  const relay = await startRendezvous({
    ids: ['hub-1'],
    plugin: { throttleStore: store, readyPath: '/readyz', retryAfter: 7, ...plugin },
    fastify: { logger: { level: 'info', stream } }
  })
  t.teardown(relay.close)
  return { relay, lines }
}

async function ask (relay: TestRendezvous, head: string): Promise<string> {
  const wire = await relay.open()
  wire.write(head)
  await wire.untilClosed()
  return wire.text
}

const connect = (token: string, id = 'hub-1'): string => `CONNECT uuid:${id}?response=${token} HTTP/1.1\r\nHost: x\r\n\r\n`
const digest = (id: string): string => `GET /r HTTP/1.1\r\nHost: x\r\nAuthorization: Digest username="${id}", realm="rendezvous", nonce="00", uri="/r", response="00"\r\n\r\n`
const basic = (id: string): string => `GET /r HTTP/1.1\r\nHost: x\r\nAuthorization: Basic ${Buffer.from(`${id}:pw`).toString('base64')}\r\n\r\n`

/** Status line, Retry-After and body: the Date of a hidden-side answer changes each second. */
function answer (text: string): { status: number | undefined, retryAfter: string | undefined, body: string } {
  return { status: statusOf(text), retryAfter: /\r\nRetry-After: ([^\r]*)\r\n/.exec(text)?.[1], body: text.slice(text.indexOf('\r\n\r\n') + 4) }
}

const TRY_LATER = { status: 503, retryAfter: '7', body: 'try again later\n' }

t.test('a throttle store that rejects everything: 503 with Retry-After on both sides, counted, warned once, not ready; all back once it is', async t => {
  const down = new Set<Method>(['hit', 'block', 'blockedFor', 'refund'])
  const { relay, lines } = await start(t, flakyStore(down))

  for (let i = 0; i < 2; i++) t.same(answer(await ask(relay, connect(createV1Token('hub-1', SECRET)))), TRY_LATER, `CONNECT with a good v1 token, ${i + 1}`)
  t.same(answer(await ask(relay, connect(createTotp(SECRET)))), TRY_LATER, 'CONNECT with a good TOTP code')
  t.same(answer(await ask(relay, connect(createV1Token('hub-1', OTHER_SECRET)))), TRY_LATER, 'CONNECT with a wrong token: not judged, so not 401')

  // A known ID and an unknown one get the same bytes, or the answer would tell IDs apart.
  const known = await ask(relay, digest('hub-1'))
  const unknown = await ask(relay, digest('nobody'))
  t.same(answer(known), TRY_LATER, 'a Digest request for a known ID')
  t.equal(unknown, known, 'one for an unknown ID: the same bytes')
  t.equal(await ask(relay, basic('nobody')), await ask(relay, basic('hub-1')), 'Basic, unknown and known ID alike')
  t.same(answer(await ask(relay, basic('hub-1'))), TRY_LATER)

  const ready = await relay.app.inject('/readyz')
  t.equal(ready.statusCode, 503)
  t.same(ready.json(), { status: 'not ready', reasons: ['throttle_store_failing'] })

  const metrics = await relay.app.rendezvous.metrics!.metrics()
  t.equal(sample(metrics, 'rendezvous_connect_total{outcome="throttle_unavailable"}'), 4)
  t.equal(sample(metrics, 'rendezvous_refusals_total{side="hidden",reason="throttle_unavailable"}'), 4)
  t.equal(sample(metrics, 'rendezvous_requests_total{outcome="throttle_unavailable"}'), 5)
  t.equal(sample(metrics, 'rendezvous_refusals_total{side="mobile",reason="throttle_unavailable"}'), 5)
  t.equal(sample(metrics, 'rendezvous_connect_total{outcome="error"}'), undefined, 'no CONNECT answered 500')
  t.equal(sample(metrics, 'rendezvous_requests_total{outcome="error"}'), undefined, 'no request reset unanswered')

  const warned = lines.filter(l => l.level >= 40)
  t.same(warned.map(l => [l.msg, l.reason]), [['the throttle store cannot count failed attempts: CONNECTs and requests naming an ID get 503 (throttle_unavailable) until it can', 'store down']], 'one warning in the minute, naming the cause')
  t.notOk(lines.some(l => l.msg === 'CONNECT failed' || l.msg === 'relay failed'), 'no error lines')
  t.equal(lines.filter(l => l.msg === 'CONNECT refused' && l.outcome === 'throttle_unavailable').length, 4)

  down.clear()
  t.equal((await relay.app.inject('/readyz')).statusCode, 200, 'ready once the store counts again')
  t.ok(lines.some(l => l.level === 30 && l.msg === 'the throttle store counts failed attempts again'))
  const parked = await relay.park('hub-1')
  const client = await relay.open()
  client.write(basic('hub-1'))
  await parked.untilText('\r\n\r\n')
  t.equal(parked.text, 'GET /r HTTP/1.1\r\nHost: x\r\n\r\n', 'parks and relays again')
  t.equal(statusOf(await ask(relay, basic('nobody'))), 404, 'an unknown ID is 404 again')
  parked.destroy()
  client.destroy()
})

t.test('a store that reads but cannot count: no token is judged until it counts again (fail closed)', async t => {
  // No refund(): attempts are held in memory, so the store is only written when a failure is counted.
  const down = new Set<Method>(['hit'])
  const { relay, lines } = await start(t, flakyStore(down, false), { authFailures: { perPair: 3, roomWait: 0 } })
  t.same(answer(await ask(relay, connect(createV1Token('hub-1', OTHER_SECRET)))), TRY_LATER, 'a wrong token whose failure cannot be counted: 503, not 401')
  // Judged, a good token would be let in and a wrong one refused: guesses without a limit, told apart.
  for (let i = 0; i < 5; i++) {
    t.same(answer(await ask(relay, connect(createV1Token('hub-1', i % 2 === 0 ? SECRET : OTHER_SECRET)))), TRY_LATER, `attempt ${i + 2}: refused before it is judged`)
  }
  t.same((await relay.app.inject('/readyz')).json(), { status: 'not ready', reasons: ['throttle_store_failing'] })
  t.equal(lines.filter(l => l.level >= 40).length, 1, 'warned once')

  down.clear()
  // The wrong token that could not be counted in the store is still held here for its window: it counts against the limit.
  for (let i = 0; i < 2; i++) t.equal(statusOf(await ask(relay, connect(createV1Token('hub-1', OTHER_SECRET)))), 401, `counted again: wrong token ${i + 1} is 401`)
  t.equal(statusOf(await ask(relay, connect(createV1Token('hub-1', SECRET)))), 429, 'and the limit holds')
})

t.test('a store that cannot cool off: refused until it can, not judged without a limit', async t => {
  const down = new Set<Method>(['block'])
  const { relay } = await start(t, flakyStore(down), { authFailures: { perPair: 2, roomWait: 0 } })
  t.equal(statusOf(await ask(relay, connect(createV1Token('hub-1', OTHER_SECRET)))), 401, 'a failure below the limit needs no cool-off')
  t.same(answer(await ask(relay, connect(createV1Token('hub-1', OTHER_SECRET)))), TRY_LATER, 'the one that reaches it cannot be cooled off')
  t.same(answer(await ask(relay, connect(createV1Token('hub-1', SECRET)))), TRY_LATER, 'nor is the next judged')
  down.clear()
  t.equal(statusOf(await ask(relay, connect(createV1Token('hub-1', SECRET)))), 429, 'once it can, the two failures still count: the limit holds')
})
