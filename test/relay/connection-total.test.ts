import t from 'tap'
import type { Socket } from 'node:net'
import { Writable } from 'node:stream'
import { startRendezvous, untilParked, type TestRendezvous } from '../helpers/rendezvous'
import { statusOf, tcpFrom, type WireClient } from '../helpers/wire'

/*
 * maxConnections caps the connections held in all, whatever their address:
 * many addresses each under maxConnectionsPerAddress could otherwise take
 * every file descriptor between them. Clients here come from 127.0.0.2 and
 * up, one connection each, so only the total can refuse them.
 */

interface Line { level: number, msg: string, outcome?: string, address?: string, max?: number }

async function relayWithLines (t: { teardown: (fn: () => Promise<void>) => void }, tls: boolean): Promise<{ relay: TestRendezvous, lines: Line[] }> {
  const lines: Line[] = []
  const stream = new Writable({ write (chunk, _enc, cb) { for (const l of String(chunk).split('\n')) if (l !== '') lines.push(JSON.parse(l) as Line); cb() } })
  const relay = await startRendezvous({ tls, fastify: { logger: { level: 'debug', stream } }, plugin: { maxConnections: 3 } })
  t.teardown(relay.close)
  return { relay, lines }
}

/** Resolves once the relay has closed `s`; rejects if it is still open after `ms`. */
async function closedWithin (s: Socket, ms: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`still open after ${ms} ms`)), ms)
    s.on('error', () => {})
    s.once('close', () => { clearTimeout(timer); resolve() })
    s.resume()
  })
}

async function refusedCount (relay: TestRendezvous): Promise<number> {
  const text = await relay.app.rendezvous.metrics?.metrics() ?? ''
  return Number(/rendezvous_connections_refused_total\{reason="total_cap"\} (\d+)/.exec(text)?.[1] ?? 0)
}

for (const tls of [false, true]) {
  const scheme = tls ? 'https' : 'http'

  t.test(`${scheme}: past maxConnections a connection from a fresh address is closed at accept; a close makes room`, async t => {
    const { relay, lines } = await relayWithLines(t, tls)
    const idle = [await tcpFrom(relay.port, '127.0.0.2'), await tcpFrom(relay.port, '127.0.0.3'), await tcpFrom(relay.port, '127.0.0.4')]
    t.teardown(() => { for (const s of idle) s.destroy() })
    await closedWithin(await tcpFrom(relay.port, '127.0.0.5'), 2000)
    await closedWithin(await tcpFrom(relay.port, '127.0.0.6'), 2000)
    t.equal(await refusedCount(relay), 2, 'every refusal is counted')
    const logged = lines.filter(l => l.outcome === 'total_cap')
    t.same(logged.map(l => [l.level, l.address, l.max]), [[30, '127.0.0.5', 3], [20, '127.0.0.6', 3]], 'one info line a minute in all; the rest are debug lines')
    t.match(logged[0]?.msg, /maxConnections/)
    idle[0]!.destroy()
    await new Promise(resolve => setTimeout(resolve, 100))
    const c = await relay.open()
    c.write('GET / HTTP/1.1\r\nHost: h\r\n\r\n')
    await c.untilText('\r\n\r\n')
    t.equal(statusOf(c.text), 401, 'a real client gets its challenge once there is room')
    c.destroy()
  })

  t.test(`${scheme}: hidden servers' accepted connections are outside the total`, async t => {
    const { relay } = await relayWithLines(t, tls)
    const parked: WireClient[] = []
    for (let i = 0; i < 5; i++) parked.push(await relay.park('hub-1'))
    t.teardown(() => { for (const p of parked) p.destroy() })
    await untilParked(relay, 5)
    const c = await relay.open()
    c.write('GET /through HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="hub-1"\r\n\r\n')
    // Newest first.
    await parked[4]!.untilText('\r\n\r\n')
    t.match(parked[4]!.text, /^GET \/through HTTP\/1\.1\r\n/, 'five parked and one spliced under a total of 3')
    parked[4]!.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
    await c.untilText('ok')
    t.equal(statusOf(c.text), 200)
    const idle = [await tcpFrom(relay.port, '127.0.0.2'), await tcpFrom(relay.port, '127.0.0.3')]
    t.teardown(() => { for (const s of idle) s.destroy() })
    await closedWithin(await tcpFrom(relay.port, '127.0.0.4'), 2000)
    t.equal(await refusedCount(relay), 1, 'the client and two idle connections fill the total')
    c.destroy()
  })
}
