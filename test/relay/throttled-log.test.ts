import t from 'tap'
import { createHash } from 'node:crypto'
import { Writable } from 'node:stream'
import { createV1Token } from '../../lib/tokens/v1'
import { addressKeyer } from '../../lib/relay/address-group'
import { AuthThrottle } from '../../lib/relay/auth-throttle'
import { refusalLevel } from '../../lib/relay/log-limit'
import { MemoryThrottleStore } from '../../lib/stores/memory-throttle-store'
import { startRendezvous, type TestRendezvous } from '../helpers/rendezvous'
import { statusOf } from '../helpers/wire'

/*
 * A throttled address is refused as fast as it asks, for the whole cool-off.
 * Each refusal used to be an info line, so a flood wrote the log as fast as
 * it was refused. Now the first one per address and minute is an info line
 * and the rest are debug lines; the metrics still count every one.
 */
interface Line { level: number, msg: string, outcome?: string, address?: string }

async function relayWithLines (t: { teardown: (fn: () => Promise<void>) => void }): Promise<{ relay: TestRendezvous, lines: Line[] }> {
  const lines: Line[] = []
  const stream = new Writable({ write (chunk, _enc, cb) { for (const l of String(chunk).split('\n')) if (l !== '') lines.push(JSON.parse(l) as Line); cb() } })
  const relay = await startRendezvous({
    ids: ['hub-1'],
    fastify: { logger: { level: 'debug', stream } },
    plugin: { authFailures: { perPair: 2, perAddress: 50, window: 60_000, coolOff: 60_000 }, unknownIdFailures: { perAddress: 2, window: 60_000, coolOff: 60_000 } }
  })
  t.teardown(relay.close)
  return { relay, lines }
}

async function exchange (relay: TestRendezvous, text: string): Promise<number | undefined> {
  const wire = await relay.open()
  wire.write(text)
  await wire.untilClosed()
  return statusOf(wire.text)
}

function throttledLines (lines: Line[], msg: string): { info: number, debug: number } {
  const mine = lines.filter(l => l.msg === msg && l.outcome === 'throttled')
  return { info: mine.filter(l => l.level === 30).length, debug: mine.filter(l => l.level === 20).length }
}

async function throttledCount (relay: TestRendezvous, metric: string): Promise<number> {
  const text = await relay.app.rendezvous.metrics!.metrics()
  return Number(new RegExp(`^${metric}\\{outcome="throttled"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0)
}

const basic = (user: string): string => `Authorization: Basic ${Buffer.from(`${user}:x`).toString('base64')}`

t.test('CONNECTs refused in a cool-off: one info line per address, the rest at debug, all counted', async t => {
  const { relay, lines } = await relayWithLines(t)
  const bad = `CONNECT uuid:hub-1?response=${createV1Token('hub-1', 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA')} HTTP/1.1\r\nHost: x\r\n\r\n`
  const statuses: Array<number | undefined> = []
  for (let i = 0; i < 12; i++) statuses.push(await exchange(relay, bad))
  t.same(statuses, [401, 401, ...Array(10).fill(429)])
  t.same(throttledLines(lines, 'CONNECT refused'), { info: 1, debug: 9 })
  t.equal(await throttledCount(relay, 'rendezvous_connect_total'), 10)
})

t.test('rendezvous requests refused in a cool-off: one info line per address and side, the rest at debug', async t => {
  const { relay, lines } = await relayWithLines(t)
  const unknown = `GET / HTTP/1.1\r\nHost: x\r\n${basic('nobody')}\r\nConnection: close\r\n\r\n`
  const known = `GET / HTTP/1.1\r\nHost: x\r\n${basic('hub-1')}\r\nConnection: close\r\n\r\n`
  const statuses: Array<number | undefined> = []
  for (let i = 0; i < 8; i++) statuses.push(await exchange(relay, unknown))
  // A known ID from that address is in the cool-off too, refused on the socket the relay took.
  for (let i = 0; i < 4; i++) statuses.push(await exchange(relay, known))
  t.same(statuses, [404, 404, ...Array(10).fill(429)])
  t.same(throttledLines(lines, 'rendezvous request refused'), { info: 2, debug: 8 })
  t.equal(await throttledCount(relay, 'rendezvous_requests_total'), 10)
})

t.test('a user name that is no ID is never written to the log as it came, only as a hash to grep for', async t => {
  const { relay, lines } = await relayWithLines(t)
  const raw: string[] = []
  const key = 'sk_live_51HxQSECRETAPIKEY0123456789abcdef'
  for (const user of [key, 'bob@example.com']) {
    t.equal(await exchange(relay, `GET /v1/chargez HTTP/1.1\r\nHost: x\r\n${basic(user)}\r\nConnection: close\r\n\r\n`), 404)
    raw.push(user)
  }
  const text = JSON.stringify(lines)
  for (const user of raw) t.notOk(text.toLowerCase().includes(user.toLowerCase()), `no trace of ${user}`)
  const refused = lines.filter(l => l.msg === 'rendezvous request refused') as Array<Line & { id?: string, idHash?: string }>
  t.same(refused.map(l => [l.outcome, l.id, l.idHash]), [
    ['unknown_id', undefined, createHash('sha256').update(key.toLowerCase()).digest('hex').slice(0, 12)],
    ['unknown_id', undefined, createHash('sha256').update('bob@example.com').digest('hex').slice(0, 12)]
  ])
})

t.test('the once-a-minute line is kept per throttled source: one IPv6 host moving through its /64 gets one info line', async t => {
  const keyOf = addressKeyer(64)
  const level = refusalLevel(keyOf)
  t.same(['2001:db8:1:2::10', '2001:db8:1:2::11', '2001:db8:1:2:ffff::1'].map(a => level('throttled', a)), ['info', 'debug', 'debug'])
  t.equal(level('throttled', '2001:db8:1:3::10'), 'info', 'another /64 is another source')
  t.equal(level('throttled', '192.0.2.1'), 'info')
  t.equal(level('throttled', '::ffff:192.0.2.1'), 'debug', 'an IPv4 client written as IPv6 by a dual-stack listener is the same client')
  t.equal(level('rejected', '2001:db8:1:2::12'), 'info', 'only throttled refusals are held back')
  const throttle = new AuthThrottle(new MemoryThrottleStore(), { perPair: 1, perAddress: 1, perIdTotp: 0, window: 60_000, coolOff: 60_000 }, 'authfail', keyOf)
  t.equal(throttle.sourceOf('2001:db8:1:2::10'), throttle.sourceOf('2001:db8:1:2::99'), 'the relay keys its lines as its throttle counts')
})
