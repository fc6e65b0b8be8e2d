import t from 'tap'
import { connect, type Socket } from 'node:net'
import { clientErrorHandler } from '../../lib/index'
import { startRendezvous as startRelay, untilParked } from '../helpers/rendezvous'
import { statusOf } from '../helpers/wire'

/* Limits that keep idle or hostile connections from locking out real users. */

const AUTH = 'Authorization: Digest username="hub-1"\r\n'

/** A plain TCP connection; resolves with it once connected. */
async function tcp (port: number): Promise<Socket> {
  return await new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1' }, () => resolve(s))
    s.once('error', reject)
  })
}

/** Resolves with the ms it took the peer to close `s`; rejects after `ms`. */
async function closedWithin (s: Socket, ms: number): Promise<number> {
  const started = Date.now()
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`still open after ${ms} ms`)), ms)
    s.on('error', () => {})
    s.once('close', () => { clearTimeout(timer); resolve(Date.now() - started) })
    s.resume()
  })
}

for (const tls of [false, true]) {
  const scheme = tls ? 'https' : 'http'

  t.test(`${scheme}: connections past maxConnectionsPerAddress are closed at once; others get through again when one goes`, async t => {
    const relay = await startRelay({ tls, plugin: { maxConnectionsPerAddress: 3 } })
    t.teardown(relay.close)
    const idle = [await tcp(relay.port), await tcp(relay.port), await tcp(relay.port)]
    await closedWithin(await tcp(relay.port), 2000)
    idle[0].destroy()
    await new Promise(resolve => setTimeout(resolve, 100))
    // A real client gets its challenge once the address is under the cap again.
    const c = await relay.open()
    c.write('GET / HTTP/1.1\r\nHost: h\r\n\r\n')
    await c.untilText('\r\n\r\n')
    t.equal(statusOf(c.text), 401)
    c.destroy()
    for (const s of idle) s.destroy()
    const metrics = await relay.app.rendezvous.metrics?.metrics()
    t.match(metrics, /rendezvous_connections_refused_total\{reason="per_address_cap"\} 1/)
  })

  t.test(`${scheme}: a hidden server's accepted connections leave its address's count, parked or spliced; clients stay counted`, async t => {
    const relay = await startRelay({ tls, plugin: { maxConnectionsPerAddress: 3 } })
    t.teardown(relay.close)
    // Five parked from one address under a cap of 3: each is counted only until its CONNECT is accepted.
    const parked = []
    // unshift: handed out newest first, so parked[0] and parked[1] take the two clients.
    for (let i = 0; i < 5; i++) parked.unshift(await relay.park('hub-1'))
    await untilParked(relay, 5)
    // Two clients splice in; their hidden halves stay out of the count, the clients stay in it.
    const clients = []
    for (const path of ['/a', '/b']) {
      const c = await relay.open()
      c.write(`GET ${path} HTTP/1.1\r\nHost: h\r\n${AUTH}\r\n`)
      clients.push(c)
    }
    await Promise.all(parked.slice(0, 2).map(async p => await p.untilText('\r\n\r\n')))
    t.same(parked.slice(0, 2).map(p => p.text.split(' ')[1]).sort(), ['/a', '/b'])
    // Two clients and one idle connection fill the cap of 3; a fourth is closed at accept.
    const idle = await tcp(relay.port)
    await closedWithin(await tcp(relay.port), 2000)
    // Parked connections closing must not uncount anything: the cap still holds at 3.
    for (const p of parked.slice(2)) p.destroy()
    await untilParked(relay, 0)
    await closedWithin(await tcp(relay.port), 2000)
    // A splice that ends takes its client with it, and that frees the client's place.
    parked[0].destroy()
    await clients[0].untilClosed()
    await new Promise(resolve => setTimeout(resolve, 100))
    const c = await relay.open()
    c.write('GET / HTTP/1.1\r\nHost: h\r\n\r\n')
    await c.untilText('\r\n\r\n')
    t.equal(statusOf(c.text), 401)
    for (const s of [c, clients[1], parked[1], idle]) s.destroy()
    const metrics = await relay.app.rendezvous.metrics?.metrics()
    t.match(metrics, /rendezvous_connections_refused_total\{reason="per_address_cap"\} 2/)
  })

  t.test(`${scheme}: past maxSpliced, clients get 503 and parked connections stay parked`, async t => {
    const relay = await startRelay({ tls, plugin: { maxSpliced: 1 } })
    t.teardown(relay.close)
    // Handed out newest first.
    const second = await relay.park('hub-1')
    const first = await relay.park('hub-1')
    const a = await relay.open()
    a.write('GET /a HTTP/1.1\r\nHost: h\r\n' + AUTH + '\r\n')
    await first.untilText('\r\n\r\n')
    const b = await relay.open()
    b.write('GET /b HTTP/1.1\r\nHost: h\r\n' + AUTH + '\r\n')
    await b.untilClosed()
    t.equal(statusOf(b.text), 503)
    t.match(b.text, /\r\nRetry-After: \d+\r\n/i)
    t.equal(second.text, '')
    await untilParked(relay, 1)
    a.destroy()
    first.destroy()
    second.destroy()
  })
}

// With the package's clientErrorHandler too (serve's): the timeout reaches it as a client error, which is no
// head to answer, so the connection closes then, not after a lingering close of 2 s more.
for (const handler of ['fastify', 'plugin'] as const) {
  t.test(`a TCP connection that never starts its TLS handshake is closed after handshakeTimeout (${handler}'s clientErrorHandler)`, async t => {
    const relay = await startRelay({ tls: true, plugin: { handshakeTimeout: 300 }, fastify: handler === 'plugin' ? { clientErrorHandler } : {} })
    t.teardown(relay.close)
    const ms = await closedWithin(await tcp(relay.port), 5000)
    t.ok(ms >= 250, `not before the deadline (${ms} ms)`)
    t.ok(ms < 1800, `nor long after it (${ms} ms)`)
  })
}

t.test('the limits are validated', async t => {
  for (const maxSpliced of [-1, Number.NaN, 'x']) {
    await t.rejects(startRelay({ plugin: { maxSpliced } as never }), { code: 'FST_RENDEZVOUS_BAD_OPTION' })
  }
  await t.rejects(startRelay({ plugin: { unknownIdFailures: { perAddress: -1 } } }), { code: 'FST_RENDEZVOUS_BAD_OPTION' })
})
