import { Writable } from 'node:stream'
import t from 'tap'
import { addressKeyer } from '../../lib/relay/address-group'
import { REFUSAL_LINES_PER_MINUTE, refusalLevel } from '../../lib/relay/log-limit'
import { startRendezvous, type TestRendezvous } from '../helpers/rendezvous'
import { openWire, statusOf, tcpFrom, WireClient } from '../helpers/wire'

/*
 * Refusals that are no failed authentication (which the throttle cools off)
 * can be sent as fast as a peer likes: 300 malformed heads from one address
 * used to write 300 info lines. Each source now gets 20 info lines a minute
 * per side, then one line saying the rest go to debug; the metrics still
 * count every refusal.
 */

interface Line { level: number, msg: string, side?: string, outcome?: string, address?: string, subnet?: string, max?: number }

async function relayWithLines (t: { teardown: (fn: () => Promise<void>) => void }, tls = false): Promise<{ relay: TestRendezvous, lines: Line[] }> {
  const lines: Line[] = []
  const stream = new Writable({ write (chunk, _enc, cb) { for (const l of String(chunk).split('\n')) if (l !== '') lines.push(JSON.parse(l) as Line); cb() } })
  const relay = await startRendezvous({ tls, fastify: { logger: { level: 'debug', stream } } })
  t.teardown(relay.close)
  return { relay, lines }
}

async function refusedTimes (open: () => Promise<WireClient>, head: string, n: number): Promise<Array<number | undefined>> {
  const statuses: Array<number | undefined> = []
  for (let i = 0; i < n; i++) {
    const wire = await open()
    wire.write(head)
    await wire.untilClosed()
    statuses.push(statusOf(wire.text))
  }
  return statuses
}

function levels (lines: Line[], msg: string, outcome: string, address = '127.0.0.1'): { info: number, debug: number } {
  const mine = lines.filter(l => l.msg === msg && l.outcome === outcome && l.address === address)
  return { info: mine.filter(l => l.level === 30).length, debug: mine.filter(l => l.level === 20).length }
}

const NOTICE = 'too many refusals from this address: the rest of this minute\'s are logged at debug (the metrics count them all)'

async function count (relay: TestRendezvous, pattern: RegExp): Promise<number> {
  return Number(pattern.exec(await relay.app.rendezvous.metrics!.metrics())?.[1] ?? -1)
}

t.test('malformed heads: 20 info lines a minute per source, one line saying so, the rest at debug; all counted', async t => {
  const { relay, lines } = await relayWithLines(t)
  const n = REFUSAL_LINES_PER_MINUTE + 10
  const statuses = await refusedTimes(relay.open, 'GET / HTTP/1.1\r\nHost: x\r\nbad line\r\n\r\n', n)
  t.same(new Set(statuses), new Set([400]))
  t.same(levels(lines, 'request refused by the HTTP parser', 'malformed_head'), { info: 20, debug: 10 })
  t.same(lines.filter(l => l.msg === NOTICE).map(l => [l.level, l.side, l.address, l.outcome, l.max]), [[30, 'mobile', '127.0.0.1', 'malformed_head', 20]], 'said once')
  const notice = lines.findIndex(l => l.msg === NOTICE)
  t.same(lines.slice(notice + 1).filter(l => l.msg === 'request refused by the HTTP parser').map(l => l.level), Array(10).fill(20), 'every one after it at debug')
  t.equal(await count(relay, /rendezvous_refusals_total\{side="mobile",reason="malformed_head"\} (\d+)\n/), n, 'the metrics count every one')

  // Another source keeps its own budget.
  const other = await tcpFrom(relay.port, '127.0.0.2')
  const wire = new WireClient(other)
  wire.write('GET / HTTP/1.1\r\nHost: x\r\nbad line\r\n\r\n')
  await wire.untilClosed()
  t.same(levels(lines, 'request refused by the HTTP parser', 'malformed_head', '127.0.0.2'), { info: 1, debug: 0 }, 'another address is logged at info')
})

t.test('the hidden side\'s malformed CONNECTs and the mobile side\'s bad credentials: each side its own 20', async t => {
  const { relay, lines } = await relayWithLines(t)
  t.same(new Set(await refusedTimes(relay.open, 'CONNECT example.com:443 HTTP/1.1\r\nHost: x\r\n\r\n', 25)), new Set([400]))
  t.same(new Set(await refusedTimes(relay.open, 'CONNECT uuid:hub-1 HTTP/1.1\r\nHost: x\r\n\r\n', 3)), new Set([407]))
  t.same(levels(lines, 'CONNECT refused', 'not_uuid'), { info: 20, debug: 5 })
  t.same(levels(lines, 'CONNECT refused', 'missing_token'), { info: 0, debug: 3 }, 'the budget is the side\'s, whatever the refusal')
  t.same(new Set(await refusedTimes(relay.open, 'GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Digest garbage===\r\n\r\n', 22)), new Set([400]))
  t.same(levels(lines, 'rendezvous request refused', 'bad_credential'), { info: 20, debug: 2 }, 'the mobile side has its own')
  t.same(lines.filter(l => l.msg === NOTICE).map(l => [l.side, l.outcome]), [['hidden', 'not_uuid'], ['mobile', 'bad_credential']])
  t.equal(await count(relay, /rendezvous_connect_total\{outcome="not_uuid"\} (\d+)\n/), 25)
  t.equal(await count(relay, /rendezvous_requests_total\{outcome="bad_credential"\} (\d+)\n/), 22)
})

t.test('plain HTTP on the TLS port: limited the same way', async t => {
  const { relay, lines } = await relayWithLines(t, true)
  const plain = async (): Promise<WireClient> => await openWire(relay.port, false)
  t.same(new Set(await refusedTimes(plain, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', 23)), new Set([400]))
  t.same(levels(lines, 'plain HTTP refused on the TLS port', 'plain_http'), { info: 20, debug: 3 })
  t.equal(lines.filter(l => l.msg === NOTICE).length, 1)
})

t.test('the budget is per source (an IPv6 host by its subnet) and per minute, and throttled refusals keep their once a minute', async t => {
  let time = 0
  const notices: Array<Record<string, unknown>> = []
  const level = refusalLevel(addressKeyer(64), { log: { info: fields => { notices.push(fields as Record<string, unknown>) } }, side: 'mobile', perInterval: 3, now: () => time })
  t.same(['2001:db8::1', '2001:db8::2', '2001:db8::3', '2001:db8::4', '2001:db8::5'].map(a => level('bad_head', a)), ['info', 'info', 'info', 'debug', 'debug'], 'one /64 shares one budget')
  t.same(notices, [{ side: 'mobile', address: '2001:db8::4', subnet: '2001:db8::/64', outcome: 'bad_head', max: 3 }], 'one notice, naming the subnet')
  t.equal(level('bad_head', '2001:db8:0:1::1'), 'info', 'another /64 is another source')
  t.equal(level('no_hidden_server', '2001:db8::6'), 'info', 'refusals outside the limited kinds are always info lines')
  t.same(['throttled', 'throttled'].map(o => level(o, '2001:db8::7')), ['info', 'debug'], 'throttled: once a minute, apart')
  time = 60_000
  t.equal(level('bad_head', '2001:db8::8'), 'info', 'a new minute, a new budget')
  t.equal(notices.length, 1)
})

t.test('heads past the fields Node keeps, without a route: at most 20 info lines a minute per source, whoever refuses them', async t => {
  const { relay, lines } = await relayWithLines(t)
  let head = 'GET / HTTP/1.1\r\nHost: x\r\n'
  for (let i = 0; i < 1100; i++) head += `X${i}: ${i}\r\n`
  head += 'Authorization: Digest username="hub-1"\r\n\r\n'
  const statuses = await refusedTimes(relay.open, head, REFUSAL_LINES_PER_MINUTE + 5)
  t.same(new Set(statuses), new Set([431]))
  const info = lines.filter(l => l.level === 30 && l.address === '127.0.0.1' && (l.outcome === 'bad_head' || l.outcome === 'head_too_large' || l.msg === NOTICE))
  t.equal(info.length, REFUSAL_LINES_PER_MINUTE + 1, '20 refusals and the notice at info; the rest at debug')
})
