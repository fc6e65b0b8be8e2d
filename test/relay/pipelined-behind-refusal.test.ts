import { Registry } from 'prom-client'
import t, { type Test } from 'tap'
import { capture } from '../admin/raw'
import { sample } from '../helpers/prometheus'
import { startRendezvous, type TestRendezvous } from '../helpers/rendezvous'
import type { WireClient } from '../helpers/wire'

/*
 * An unknown ID's 404 (and a 429 or 503 in its place) is written on the
 * connection and closes it; Node's parser still hands over the requests the
 * client pipelined behind it, and each was counted, logged and throttled as
 * if it had been answered, though none ever was. They are now dropped
 * unanswered and uncounted, as docs/operations.md says. And a refusal the
 * relay takes from the header callback (a bad credential) waits for the
 * answers before it rather than overtaking them.
 */

const basic = (user: string): string => `Authorization: Basic ${Buffer.from(`${user}:x`).toString('base64')}\r\n`
const unknown = (i: number): string => `GET /${i} HTTP/1.1\r\nHost: h\r\n${basic(`nobody-${i}`)}\r\n`
const NOT_FOUND = 'HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 29\r\nConnection: close\r\n\r\nno hidden server has this ID\n'

interface Counted { unknownId?: number, challenged?: number, badCredential?: number, refusedUnknown?: number, throttled?: number }

async function counted (metrics: Registry): Promise<Counted> {
  const text = await metrics.metrics()
  const all: Counted = {
    unknownId: sample(text, 'rendezvous_requests_total{outcome="unknown_id"}'),
    challenged: sample(text, 'rendezvous_requests_total{outcome="challenged"}'),
    badCredential: sample(text, 'rendezvous_requests_total{outcome="bad_credential"}'),
    refusedUnknown: sample(text, 'rendezvous_refusals_total{side="mobile",reason="unknown_id"}'),
    throttled: sample(text, 'rendezvous_requests_total{outcome="throttled"}')
  }
  return Object.fromEntries(Object.entries(all).filter(([, v]) => v !== undefined))
}

async function setup (t: Test, tls: boolean): Promise<{ relay: TestRendezvous, metrics: Registry, refusedLines: () => Array<Record<string, any>> }> {
  const metrics = new Registry()
  const log = capture()
  const relay = await startRendezvous({
    tls,
    fastify: { logger: { level: 'info', stream: log.stream } },
    // The second unknown ID from an address is its last 404: a third would be 429.
    plugin: { metrics, unknownIdFailures: { perAddress: 2, window: 60_000, coolOff: 60_000 } },
    after: app => { app.get('/slow', async () => { await new Promise(resolve => setTimeout(resolve, 200)); return 'slow\n' }) }
  })
  t.teardown(relay.close)
  return { relay, metrics, refusedLines: () => log.lines().filter(l => l.msg === 'rendezvous request refused') }
}

async function answered (wire: WireClient): Promise<string> {
  await wire.untilClosed()
  return wire.text
}

for (const tls of [false, true]) {
  const kind = tls ? 'TLS' : 'plain'

  t.test(`${kind}: five unknown IDs pipelined on one connection: one 404, counted, logged and throttled once`, async t => {
    const { relay, metrics, refusedLines } = await setup(t, tls)
    const wire = await relay.open()
    wire.write([0, 1, 2, 3, 4].map(unknown).join(''))
    t.equal(await answered(wire), NOT_FOUND, 'one answer, then the close')
    t.same(await counted(metrics), { unknownId: 1, refusedUnknown: 1 })
    t.same(refusedLines().map(l => [l.url, l.status]), [['/0', 404]], 'one line')
    // Counted five times, the address would be cooling off now.
    const next = await relay.open()
    next.write(unknown(5))
    t.equal(await answered(next), NOT_FOUND, 'the next unknown ID is the second the throttle counts, not the sixth')
    t.same(await counted(metrics), { unknownId: 2, refusedUnknown: 2 })
  })

  t.test(`${kind}: requests pipelined behind a 404 are neither answered nor counted, whatever they are`, async t => {
    const { relay, metrics, refusedLines } = await setup(t, tls)
    const wire = await relay.open()
    wire.write(unknown(0) + 'GET /a HTTP/1.1\r\nHost: h\r\n\r\n' + 'GET /b HTTP/1.1\r\nHost: h\r\nAuthorization: Basic !!!\r\n\r\n' + 'GET /c HTTP/1.1\r\n\r\n')
    t.equal(await answered(wire), NOT_FOUND, 'the 404 alone: no 401, and no 400 ahead of it')
    await new Promise(resolve => setTimeout(resolve, 100))
    t.same(await counted(metrics), { unknownId: 1, refusedUnknown: 1 }, 'not challenged, no bad credential, no bad head')
    t.same(refusedLines().map(l => l.status), [404])
  })

  t.test(`${kind}: a request sent after the 404 arrived is neither answered nor counted`, async t => {
    const { relay, metrics, refusedLines } = await setup(t, tls)
    const wire = await relay.open()
    wire.write(unknown(0))
    await wire.untilText('no hidden server has this ID\n')
    wire.write('GET /after HTTP/1.1\r\nHost: h\r\n\r\n')
    t.equal(await answered(wire), NOT_FOUND)
    t.same(await counted(metrics), { unknownId: 1, refusedUnknown: 1 }, 'not challenged')
    t.same(refusedLines().map(l => l.status), [404])
  })

  t.test(`${kind}: a bad credential pipelined behind a slow answer is refused after it, not before`, async t => {
    const { relay, metrics } = await setup(t, tls)
    const wire = await relay.open()
    wire.write('GET /slow HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\nAuthorization: Basic !!!\r\n\r\n')
    const text = await answered(wire)
    t.match(text, /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nslow\nHTTP\/1\.1 400 Bad Request\r\n[^]*\r\n\r\nmalformed Basic credentials\n$/, 'the slow answer whole, then the 400')
    t.same(await counted(metrics), { badCredential: 1 })
  })

  t.test(`${kind}: a challenge pipelined behind a slow answer is counted once its turn comes`, async t => {
    const { relay, metrics } = await setup(t, tls)
    const wire = await relay.open()
    wire.write('GET /slow HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n')
    const text = await answered(wire)
    t.match(text, /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nslow\nHTTP\/1\.1 401 Unauthorized\r\n/)
    t.same(await counted(metrics), { challenged: 1 })
  })
}
