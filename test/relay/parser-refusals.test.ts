import { Writable } from 'node:stream'
import t from 'tap'
import { startRendezvous } from '../helpers/rendezvous'
import { statusOf } from '../helpers/wire'

// What Node's HTTP parser refuses never reaches the hand-off, yet it is a
// refusal of this server like any other: counted in rendezvous_refusals_total
// by side and reason, and one line at info.

t.test('heads refused by the HTTP parser are counted by side and reason, and logged once each at info', async t => {
  let raw = ''
  const stream = new Writable({ write (chunk, _e, cb) { raw += String(chunk); cb() } })
  const relay = await startRendezvous({ fastify: { logger: { level: 'info', stream } } })
  t.teardown(relay.close)

  // The second part of a head, when it comes in a read of its own: Node's error carries only that read.
  const cases: Array<[string, string, number, string?]> = [
    ['mobile', 'GET / HTTP/1.1\r\nHost: h\r\nBad Header: y\r\n\r\n', 400],
    ['hidden', 'CONNECT uuid:hub 1?response=x HTTP/1.1\r\nHost: h\r\n\r\n', 400],
    ['mobile', `GET / HTTP/1.1\r\nHost: h\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431],
    ['unknown', 'CONNECT uuid:hub-1?response=x HTTP/1.1\r\n', 400, 'Bad Header\r\n\r\n']
  ]
  for (const [side, head, status, later] of cases) {
    const wire = await relay.open()
    wire.write(head)
    if (later !== undefined) {
      await new Promise(resolve => setTimeout(resolve, 200))
      wire.write(later)
    }
    // More bytes after the refused head: Node's parser reports them again, and they must not count again.
    wire.write('more bytes after the head\r\n\r\n')
    await wire.until(c => statusOf(c.text) !== undefined, 5000, `the ${side} side's answer`)
    t.equal(statusOf(wire.text), status, `${side}: ${status}`)
    wire.destroy()
  }
  const text = await relay.app.rendezvous.metrics!.metrics()
  t.match(text, /rendezvous_refusals_total\{side="mobile",reason="malformed_head"\} 1\n/)
  t.match(text, /rendezvous_refusals_total\{side="hidden",reason="malformed_head"\} 1\n/)
  t.match(text, /rendezvous_refusals_total\{side="mobile",reason="head_too_large"\} 1\n/)
  t.match(text, /rendezvous_refusals_total\{side="unknown",reason="malformed_head"\} 1\n/, 'a CONNECT whose request line came in an earlier read: not counted as mobile')
  const lines = raw.split('\n').filter(l => l.includes('request refused by the HTTP parser')).map(l => JSON.parse(l) as Record<string, unknown>)
  t.same(lines.map(l => [l.level, l.plugin, l.side, l.outcome, l.status]), [
    [30, 'rendezvous', 'mobile', 'malformed_head', 400],
    [30, 'rendezvous', 'hidden', 'malformed_head', 400],
    [30, 'rendezvous', 'mobile', 'head_too_large', 431],
    [30, 'rendezvous', 'unknown', 'malformed_head', 400]
  ], 'one info line each, with the side and the reason')
  t.notMatch(raw, /response=x|aaaaaaaa/, 'nothing of the refused bytes')
})

for (const tls of [false, true]) {
  t.test(`${tls ? 'TLS' : 'plain'}: a client that closes in the middle of its head gave up; no refusal is counted or logged at info`, async t => {
    let raw = ''
    const stream = new Writable({ write (chunk, _e, cb) { raw += String(chunk); cb() } })
    const relay = await startRendezvous({ tls, fastify: { logger: { level: 'info', stream } } })
    t.teardown(relay.close)
    for (const keepAliveFirst of [false, true]) {
      const wire = await relay.open()
      if (keepAliveFirst) {
        wire.write('GET /nothing-here HTTP/1.1\r\nHost: h\r\n\r\n')
        await wire.untilText('\r\n\r\n')
      }
      wire.write('GET /x HTTP/1.1\r\nHost: h\r\n')
      await new Promise(resolve => setTimeout(resolve, 100))
      wire.socket.end()
      await wire.untilClosed()
    }
    // A real refusal afterwards, so that the scrape below is known to follow the two closes.
    const bad = await relay.open()
    bad.write('GET / HTTP/1.1\r\nHost: h\r\nBad Header: y\r\n\r\n')
    await bad.untilClosed()
    const text = await relay.app.rendezvous.metrics!.metrics()
    t.match(text, /rendezvous_refusals_total\{side="mobile",reason="malformed_head"\} 1\n/, 'only the malformed head')
    t.notMatch(text, /side="unknown",reason="malformed_head"/)
    const lines = raw.split('\n').filter(l => l.includes('request refused by the HTTP parser')).map(l => JSON.parse(l) as Record<string, unknown>)
    t.same(lines.map(l => [l.side, l.outcome, l.address]), [['mobile', 'malformed_head', '127.0.0.1']])
  })
}

t.test('on a dual-stack listener, IPv4 clients are named in their IPv4 form in every line', async t => {
  let raw = ''
  const stream = new Writable({ write (chunk, _e, cb) { raw += String(chunk); cb() } })
  const relay = await startRendezvous({ host: '::', fastify: { logger: { level: 'info', stream } } })
  t.teardown(relay.close)
  const bad = await relay.open()
  bad.write('GET / HTTP/1.1\r\nHost: h\r\nBad Header: y\r\n\r\n')
  await bad.untilClosed()
  const unknown = await relay.open()
  unknown.write(`GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Basic ${Buffer.from('nobody:x').toString('base64')}\r\n\r\n`)
  await unknown.untilClosed()
  const connect = await relay.open()
  connect.write('CONNECT uuid:hub-1?response=1.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA HTTP/1.1\r\nHost: h\r\n\r\n')
  await connect.untilClosed()
  const addresses = raw.split('\n').filter(l => l !== '').map(l => JSON.parse(l) as { address?: string, msg: string }).filter(l => l.address !== undefined)
  t.ok(addresses.length >= 3, `${addresses.length} lines with an address`)
  t.same(addresses.filter(l => l.address !== '127.0.0.1').map(l => `${l.msg}: ${l.address}`), [])
})
