import t from 'tap'
import { startRendezvous } from '../helpers/rendezvous'
import { statusOf } from '../helpers/wire'
import { createV1Token } from '../../lib/tokens/v1'
import { SECRET } from '../helpers/fixtures'
import { HeldCache } from '../helpers/held-replay-cache'

/*
 * A hidden server sends one CONNECT head and nothing more until a request
 * reaches it. Bytes it sent after its head, while the relay was still
 * checking its token, used to be spliced to a client already waiting for
 * the ID: that client got an "answer" written before its request existed.
 * They are refused as bytes in the same packet as the head are: 409, and
 * the waiting client is not given that connection.
 */

const EVIL = 'HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL'

for (const tls of [false, true]) {
  t.test(`${tls ? 'TLS' : 'plain'}: bytes sent while the CONNECT is being checked get 409, and never reach a waiting client`, async t => {
    const cache = new HeldCache()
    const relay = await startRendezvous({ tls, plugin: { replayCache: cache, waitTimeout: 1500 } })
    t.teardown(relay.close)
    const client = await relay.open()
    client.write('GET /c HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="hub-1", realm="r", nonce="n", uri="/c", response="r"\r\n\r\n')
    await new Promise(resolve => setTimeout(resolve, 100))
    const hidden = await relay.open()
    hidden.write(`CONNECT uuid:hub-1?response=${createV1Token('hub-1', SECRET)} HTTP/1.1\r\nHost: h\r\n\r\n`)
    while (cache.held.length < 1) await new Promise(resolve => setTimeout(resolve, 5))
    hidden.write(EVIL)
    // Long enough for the relay to have read them; the check is still held.
    await new Promise(resolve => setTimeout(resolve, 100))
    cache.held[0]!()
    await hidden.untilClosed()
    t.equal(statusOf(hidden.text), 409, hidden.text)
    t.notOk(hidden.text.includes('GET /c'), 'the client\'s request did not go down it')
    await client.untilClosed()
    t.equal(statusOf(client.text), 503, 'the client waited its time out, and got the relay\'s answer, not the early bytes')
    t.notOk(client.text.includes('EVIL'))
  })
}

for (const tls of [false, true]) {
  for (const how of ['half-closes', 'closes'] as const) {
    t.test(`${tls ? 'TLS' : 'plain'}: a CONNECT that ${how} while it is checked is not handed to the waiting client, which the next one serves`, async t => {
      const cache = new HeldCache()
      const relay = await startRendezvous({ tls, plugin: { replayCache: cache, waitTimeout: 3000 } })
      t.teardown(relay.close)
      const client = await relay.open()
      client.write('GET /c HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="hub-1", realm="r", nonce="n", uri="/c", response="r"\r\n\r\n')
      await new Promise(resolve => setTimeout(resolve, 100))
      const crashing = await relay.open(true)
      crashing.write(`CONNECT uuid:hub-1?response=${createV1Token('hub-1', SECRET)} HTTP/1.1\r\nHost: h\r\n\r\n`)
      while (cache.held.length < 1) await new Promise(resolve => setTimeout(resolve, 5))
      if (how === 'half-closes') crashing.socket.end()
      else crashing.destroy()
      await new Promise(resolve => setTimeout(resolve, 100))
      cache.held[0]!()
      await new Promise(resolve => setTimeout(resolve, 100))
      t.notOk(crashing.text.includes('GET /c'), 'the request did not go down the dead connection')
      t.match(await relay.app.rendezvous.metrics!.metrics(), /^rendezvous_connect_total\{outcome="peer_left"\} 1$/m, 'counted')
      const healthy = await relay.open()
      healthy.write(`CONNECT uuid:hub-1?response=${createV1Token('hub-1', SECRET)} HTTP/1.1\r\nHost: h\r\n\r\n`)
      while (cache.held.length < 2) await new Promise(resolve => setTimeout(resolve, 5))
      cache.held[1]!()
      await healthy.untilText('GET /c')
      healthy.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok')
      await client.untilText('ok')
      t.equal(client.text, 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok', 'served by the next hidden server')
      healthy.destroy()
    })
  }
}

t.test('a CONNECT that sends nothing more is still handed to the waiting client', async t => {
  const cache = new HeldCache()
  const relay = await startRendezvous({ plugin: { replayCache: cache } })
  t.teardown(relay.close)
  const client = await relay.open()
  client.write('GET /c HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="hub-1", realm="r", nonce="n", uri="/c", response="r"\r\n\r\n')
  await new Promise(resolve => setTimeout(resolve, 100))
  const hidden = await relay.open()
  hidden.write(`CONNECT uuid:hub-1?response=${createV1Token('hub-1', SECRET)} HTTP/1.1\r\nHost: h\r\n\r\n`)
  while (cache.held.length < 1) await new Promise(resolve => setTimeout(resolve, 5))
  cache.held[0]!()
  await hidden.untilText('GET /c')
  t.equal(hidden.text, 'HTTP/1.1 200 OK\r\n\r\nGET /c HTTP/1.1\r\nHost: h\r\n\r\n')
  hidden.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok')
  await client.untilText('ok')
  t.equal(client.text, 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok')
  hidden.destroy()
})

t.test('a CONNECT that floods while it is checked is not read past its first bytes: TCP holds it back', async t => {
  const cache = new HeldCache()
  const relay = await startRendezvous({ plugin: { replayCache: cache } })
  t.teardown(relay.close)
  const flood = await relay.open()
  flood.write(`CONNECT uuid:hub-1?response=${createV1Token('hub-1', SECRET)} HTTP/1.1\r\nHost: h\r\n\r\n`)
  while (cache.held.length < 1) await new Promise(resolve => setTimeout(resolve, 5))
  const chunk = Buffer.alloc(1 << 20, 0x61)
  const until = Date.now() + 1000
  // Write while the kernel takes it; a relay that reads at line rate takes gigabytes in a second.
  while (Date.now() < until) {
    if (flood.socket.writableLength < (8 << 20)) flood.socket.write(chunk)
    await new Promise(resolve => setImmediate(resolve))
  }
  const taken = flood.socket.bytesWritten - flood.socket.writableLength
  t.ok(taken < 64 << 20, `${(taken / (1 << 20)).toFixed(1)} MiB taken in a second`)
  cache.held[0]!()
  await flood.untilText('\r\n\r\n')
  t.match(flood.text, /^HTTP\/1\.1 409 /)
  flood.destroy()
})
