import t from 'tap'
import { startRendezvous, untilParked } from '../helpers/rendezvous'
import { relayOnce, statusOf } from '../helpers/wire'
import { until } from '../helpers/until'
import { capture } from '../admin/raw'

/*
 * An absolute-form target (`GET http://user:password@host/path`) is relayed
 * as it came, but its userinfo is a password: the relay's lines name the
 * target without it, and without its query, as for any other target.
 */
t.test('relay closed and the refusals name an absolute-form target without its userinfo or query', async t => {
  const log = capture()
  const relay = await startRendezvous({ fastify: { logger: { level: 'trace', stream: log.stream } } })
  t.teardown(relay.close)
  const hidden = await relay.park('hub-1')
  await untilParked(relay, 1)
  const client = await relay.open()
  const target = 'http://alice:Hunter2Pass@example.com/x?access_token=QLEAK'
  await relayOnce(client, hidden, `GET ${target} HTTP/1.1\r\nHost: example.com\r\nAuthorization: Digest username="hub-1"\r\n\r\n`, 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok', 'ok')
  t.match(hidden.text, `GET ${target} HTTP/1.1\r\n`, 'the hidden server gets the target as it was sent')
  await until(() => log.text().includes('"relay closed"'), 3000, 'the relay closed line')
  const refused = await relay.open()
  refused.write('GET http://bob:Hunter3Pass@example.com/y?q=QLEAK2 HTTP/1.1\r\nHost: example.com\r\nAuthorization: Basic Ym9iOng=\r\n\r\n')
  await refused.untilClosed()
  t.equal(statusOf(refused.text), 404, 'an unknown ID')
  const lines = log.lines() as Array<{ msg: string, url?: string, side?: string }>
  t.equal(lines.find(l => l.msg === 'relay closed')?.url, 'http://example.com/x')
  t.equal(lines.find(l => l.msg === 'rendezvous request refused')?.url, 'http://example.com/y')
  const own = lines.filter(l => l.side !== undefined)
  t.ok(own.length >= 3, "the plugin's own lines")
  t.notMatch(JSON.stringify(own), /Hunter\dPass|alice|bob:|QLEAK/, "no userinfo or query in the plugin's lines (an app logs Fastify's own as it configures it)")
})

/*
 * The side of a head Node's parser refused is read off its first bytes,
 * which begin a request line only when the head came in one read. A head
 * split inside its method (`CONN`, then `ECT uuid:...`) must not be taken
 * for a mobile request whose method is `ECT`.
 */
t.test('a head split inside its method is of side unknown, not mobile', async t => {
  const log = capture()
  const relay = await startRendezvous({ fastify: { logger: { level: 'info', stream: log.stream } } })
  t.teardown(relay.close)
  const cases: Array<[string, string, string]> = [
    ['unknown', 'CONN', 'ECT uuid:abc?response=1 HTTP/1.1\r\nHost: x\r\nbad line\r\n\r\n'],
    ['unknown', 'GE', 'T / HTTP/1.1\r\nHost: x\r\nbad line\r\n\r\n'],
    ['mobile', 'M-SEARCH * HTTP/1.1\r\nHost: x\r\nbad line\r\n\r\n', ''],
    ['hidden', 'CONNECT uuid:abc?response=1 HTTP/1.1\r\nHost: x\r\nbad line\r\n\r\n', '']
  ]
  for (const [side, first, second] of cases) {
    const wire = await relay.open()
    wire.write(first)
    if (second !== '') {
      await new Promise(resolve => setTimeout(resolve, 150))
      wire.write(second)
    }
    await wire.until(c => statusOf(c.text) !== undefined, 5000, `the answer to a ${side} head`)
    t.equal(statusOf(wire.text), 400, side)
    wire.destroy()
  }
  await until(() => log.text().split('request refused by the HTTP parser').length === 5, 3000, 'four lines')
  const text = await relay.app.rendezvous.metrics!.metrics()
  t.match(text, /rendezvous_refusals_total\{side="unknown",reason="malformed_head"\} 2\n/, 'both split heads are unknown')
  t.match(text, /rendezvous_refusals_total\{side="mobile",reason="malformed_head"\} 1\n/, 'M-SEARCH, a method Node knows, is mobile')
  t.match(text, /rendezvous_refusals_total\{side="hidden",reason="malformed_head"\} 1\n/)
  const sides = (log.lines() as Array<{ msg: string, side?: string }>).filter(l => l.msg === 'request refused by the HTTP parser').map(l => l.side)
  t.same(sides, ['unknown', 'unknown', 'mobile', 'hidden'])
})
