import { until } from '../helpers/until'
import t from 'tap'
import { startRendezvous, type TestRendezvous } from '../helpers/rendezvous'
import type { WireClient } from '../helpers/wire'

const HEAD = 'GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="hub-1"\r\n\r\n'

async function pair (relay: TestRendezvous, halfOpen = false): Promise<{ client: WireClient, hidden: WireClient }> {
  const hidden = await relay.park('hub-1', undefined, halfOpen)
  const client = await relay.open(halfOpen)
  client.write(HEAD)
  await hidden.untilText('\r\n\r\n')
  hidden.drain()
  return { client, hidden }
}

async function connections (relay: TestRendezvous): Promise<number> {
  return await new Promise((resolve, reject) => relay.app.server.getConnections((err, n) => err != null ? reject(err) : resolve(n)))
}

for (const tls of [false, true]) {
  t.test(`${tls ? 'https' : 'http'}: the splice`, async t => {
    const relay = await startRendezvous({ tls })
    t.teardown(relay.close)

    t.test('a half-close from the client reaches the hidden server, which can still answer', async t => {
      const { client, hidden } = await pair(relay, true)
      client.socket.end()
      await hidden.until(h => h.ended, 3000, 'end')
      hidden.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nafter')
      await client.untilText('after')
      hidden.socket.end()
      await client.untilClosed()
      await hidden.untilClosed()
      await until(async () => await connections(relay) === 0)
      t.equal(relay.app.rendezvous.stats().spliced, 0)
    })

    t.test('a reset on one side closes the other', async t => {
      const { client, hidden } = await pair(relay)
      if (tls) hidden.socket.destroy()
      else hidden.socket.resetAndDestroy()
      await client.untilClosed()
      await until(async () => await connections(relay) === 0)
      t.pass('both gone')
    })

    t.test('backpressure: a client that does not read stops the hidden server\'s writes', async t => {
      const { client, hidden } = await pair(relay)
      client.socket.pause()
      const chunk = Buffer.alloc(64 * 1024, 7)
      let written = 0
      let blocked = false
      for (let i = 0; i < 2000 && !blocked; i++) {
        written += chunk.length
        if (!hidden.socket.write(chunk)) {
          await Promise.race([
            new Promise(resolve => hidden.socket.once('drain', resolve)),
            new Promise(resolve => setTimeout(resolve, 300))
          ])
          blocked = hidden.socket.writableNeedDrain
        }
      }
      t.ok(blocked, 'the hidden server had to wait')
      t.ok(written < 64 * 1024 * 1024, `the relay buffered a bounded amount (${written} bytes written)`)
      client.socket.resume()
      await client.untilBytes(written, 20_000)
      t.equal(client.received.length, written)
      t.ok(client.received.every(b => b === 7))
      client.destroy()
      await hidden.untilClosed()
    })

    t.test('binary data of every byte value passes both ways unchanged', async t => {
      const { client, hidden } = await pair(relay)
      const up = Buffer.alloc(256 * 1024)
      for (let i = 0; i < up.length; i++) up[i] = (i * 31 + 7) & 0xff
      const down = Buffer.from(up).reverse()
      client.write(up)
      hidden.write(down)
      await hidden.untilBytes(up.length)
      await client.untilBytes(down.length)
      t.ok(hidden.received.equals(up))
      t.ok(client.received.equals(down))
      client.destroy()
      await hidden.untilClosed()
    })
  })
}

t.test('spliceIdleTimeout closes a silent pair', async t => {
  const relay = await startRendezvous({ plugin: { spliceIdleTimeout: 200 } })
  t.teardown(relay.close)
  const { client, hidden } = await pair(relay)
  await Promise.all([client.untilClosed(2000), hidden.untilClosed(2000)])
  t.pass('closed by the idle timer')
})

for (const tls of [false, true]) {
  t.test(`${tls ? 'https' : 'http'}: a client lingering after its hidden server reset is cut by close() within closeGracePeriod, not lingerTimeout`, async t => {
    const relay = await startRendezvous({ tls, plugin: { lingerTimeout: 30_000, closeGracePeriod: 300 } })
    t.teardown(relay.close)
    // Half-open: the relay's FIN does not make this client close, as it does a Node client by default.
    const { client, hidden } = await pair(relay, true)
    // A client that never stops sending: only the linger's bound, or the shutdown, ends it.
    const sending = setInterval(() => client.write(Buffer.alloc(1024, 'u')), 10)
    t.teardown(() => clearInterval(sending))
    hidden.write('HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
    await hidden.untilBytes(1)
    hidden.socket.destroy()
    await client.until(c => c.ended, 5000, 'the answer and a FIN')
    await new Promise(resolve => setTimeout(resolve, 200))
    t.notOk(client.closed, 'lingering: still open, its bytes read and dropped')
    const started = Date.now()
    await relay.close()
    const took = Date.now() - started
    t.ok(took < 3000, `close() took ${took} ms, bounded by closeGracePeriod`)
    await client.untilClosed(3000)
    t.match(client.text, /^HTTP\/1\.1 413 /)
  })
}

t.test('refused connections are closed and leave nothing behind', async t => {
  const relay = await startRendezvous()
  t.teardown(relay.close)
  const c = await relay.open()
  c.write('GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username=\r\n\r\n')
  await c.untilClosed()
  const h = await relay.open()
  h.write('CONNECT example.com:443 HTTP/1.1\r\nHost: h\r\n\r\n')
  await h.untilClosed()
  await until(async () => await connections(relay) === 0)
  t.pass('no connection left')
})
