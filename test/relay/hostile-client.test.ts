import t, { type Test } from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyServerOptions } from 'fastify'
import { startRendezvous as startRelay, untilParked, type TestRendezvous as Relay } from '../helpers/rendezvous'
import { statusOf, type WireClient } from '../helpers/wire'
import { until } from '../helpers/until'

/*
 * Defects a hostile (or merely unlucky) mobile client found in the relay.
 * Each case failed before its fix.
 */

const DIGEST = (id: string): string => `Authorization: Digest username="${id}", realm="rendezvous", nonce="n", uri="/", response="r"\r\n`

/** Asserts that nothing reaches a parked hidden connection for a while, and that it is still parked. */
async function stillUnused (t: Test, relay: Relay, hidden: WireClient, parked = 1): Promise<void> {
  await sleep(300)
  t.equal(hidden.text, '', 'the hidden server received nothing')
  t.equal(relay.app.rendezvous.stats().parked, parked, 'the hidden connection is still parked')
}

/** Sends `request` as a new client and returns the head the parked connection `hidden` received; both close after. */
async function forwardedHead (relay: Relay, hidden: WireClient, request: string): Promise<string> {
  const client = await relay.open()
  client.write(request)
  await hidden.untilText('\r\n\r\n')
  client.destroy()
  await hidden.untilClosed()
  return hidden.text
}

for (const tls of [false, true]) {
  const scheme = tls ? 'https' : 'http'

  t.test(`${scheme}: a client that sends FIN while waiting leaves the queue, and its request is never relayed`, async t => {
    const relay = await startRelay({ tls, plugin: { waitTimeout: 20_000 } })
    t.teardown(relay.close)
    const client = await relay.open(true)
    client.write('POST /transfer HTTP/1.1\r\nHost: h\r\n' + DIGEST('hub-1') + 'Content-Length: 3\r\n\r\nabc')
    await until(() => relay.app.rendezvous.stats().waiting === 1, 5000, 'the client to wait')
    client.socket.end()
    await until(() => relay.app.rendezvous.stats().waiting === 0, 2000, 'the waiter to leave')
    const hidden = await relay.park('hub-1')
    await stillUnused(t, relay, hidden)
    hidden.destroy()
    client.destroy()
  })

  t.test(`${scheme}: a body that arrives while waiting is still relayed byte for byte`, async t => {
    const relay = await startRelay({ tls, plugin: { waitTimeout: 20_000 } })
    t.teardown(relay.close)
    const client = await relay.open()
    client.write('POST /p HTTP/1.1\r\nHost: h\r\n' + DIGEST('hub-1') + 'Content-Length: 10\r\n\r\nhello')
    await until(() => relay.app.rendezvous.stats().waiting === 1, 5000, 'the client to wait')
    client.write('world')
    await sleep(100)
    const hidden = await relay.park('hub-1')
    await hidden.untilText('helloworld')
    t.equal(hidden.text, 'POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nhelloworld')
    hidden.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
    await client.untilText('ok')
    client.destroy()
    await hidden.untilClosed()
  })

  t.test(`${scheme}: pipelined responses keep their order`, async t => {
    const relay = await startRelay({
      tls,
      after: app => {
        app.get('/fast', async () => 'FAST')
        app.get('/slow', async () => { await sleep(300); return 'SLOW' })
      }
    })
    t.teardown(relay.close)
    const hidden = await relay.park('hub-1')
    const client = await relay.open()
    client.write('GET /fast HTTP/1.1\r\nHost: h\r\n\r\nGET /slow HTTP/1.1\r\nHost: h\r\n\r\n' +
      'GET /hidden HTTP/1.1\r\nHost: h\r\n' + DIGEST('hub-1') + '\r\n')
    await hidden.untilText('\r\n\r\n')
    hidden.write('HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nHIDDEN')
    await client.untilText('HIDDEN')
    const bodies = client.text.match(/FAST|SLOW|HIDDEN/g)
    t.same(bodies, ['FAST', 'SLOW', 'HIDDEN'])
    client.destroy()
    await hidden.untilClosed()
  })

  t.test(`${scheme}: a request pipelined behind a closing response is never relayed`, async t => {
    const relay = await startRelay({ tls })
    t.teardown(relay.close)
    const hidden = await relay.park('hub-1')
    const client = await relay.open()
    client.write('GET /x HTTP/1.1\r\nHost: h\r\n' + DIGEST('nobody') + '\r\n' +
      'POST /transfer HTTP/1.1\r\nHost: h\r\n' + DIGEST('hub-1') + 'Content-Length: 3\r\n\r\nabc')
    await client.untilClosed()
    t.equal(statusOf(client.text), 404)
    t.equal(client.text.match(/HTTP\/1\.1 /g)?.length, 1, 'one answer only')
    await stillUnused(t, relay, hidden)
    hidden.destroy()
  })

  t.test(`${scheme}: more headers than Node keeps are refused with 431, never forwarded short`, async t => {
    const relay = await startRelay({ tls })
    t.teardown(relay.close)
    const hidden = await relay.park('hub-1')
    const client = await relay.open()
    const many = 'a:b\r\n'.repeat(2100)
    const body = 'x'.repeat(47)
    client.write('POST /p HTTP/1.1\r\nHost: h\r\n' + DIGEST('hub-1') + many + 'Content-Length: 47\r\n\r\n' + body)
    await client.untilClosed()
    // From the relay on Node 20; Node 22 and later refuse such a head themselves (431, then a close).
    t.equal(statusOf(client.text), 431)
    await stillUnused(t, relay, hidden)
    hidden.destroy()
  })

  t.test(`${scheme}: a WebSocket routed by ?rendezvous= keeps its own Authorization`, async t => {
    const relay = await startRelay({ tls })
    t.teardown(relay.close)
    const head = 'GET /ws?rendezvous=hub-1 HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
      'Authorization: Bearer app-token\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n'
    t.equal(await forwardedHead(relay, await relay.park('hub-1'), head), head, 'forwarded unchanged')
  })

  t.test(`${scheme}: an Upgrade that names its ID in both places loses only the rendezvous Authorization`, async t => {
    const relay = await startRelay({ tls })
    t.teardown(relay.close)
    const upgrade = 'GET /ws?rendezvous=hub-1 HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n'
    t.equal(await forwardedHead(relay, await relay.park('hub-1'), upgrade + DIGEST('hub-1') + '\r\n'), upgrade + '\r\n')
  })

  t.test(`${scheme}: an HTTP/1.1 rendezvous without exactly one Host is refused with 400`, async t => {
    const relay = await startRelay({ tls })
    t.teardown(relay.close)
    const hidden = await relay.park('hub-1')
    for (const hosts of ['', 'Host: a\r\nHost: b\r\n']) {
      const client = await relay.open()
      client.write('GET / HTTP/1.1\r\n' + hosts + DIGEST('hub-1') + '\r\n')
      await client.untilClosed()
      t.equal(statusOf(client.text), 400, JSON.stringify(hosts))
    }
    await stillUnused(t, relay, hidden)
    // HTTP/1.0 has no Host requirement.
    t.equal(await forwardedHead(relay, hidden, 'GET / HTTP/1.0\r\n' + DIGEST('hub-1') + '\r\n'), 'GET / HTTP/1.0\r\n\r\n')
  })
}

t.test('with the lenient parser, a NUL in a header gets 400 and the parked connection stays parked', async t => {
  const relay = await startRelay({ fastify: { insecureHTTPParser: true } as FastifyServerOptions })
  t.teardown(relay.close)
  const hidden = await relay.park('hub-1')
  const client = await relay.open()
  client.write(Buffer.from('GET / HTTP/1.1\r\nHost: h\r\nX-Bad: a\0b\r\n' + DIGEST('hub-1') + '\r\n', 'latin1'))
  await client.untilClosed()
  t.equal(statusOf(client.text), 400)
  await stillUnused(t, relay, hidden)
  const next = await relay.open()
  next.write('GET /ok HTTP/1.1\r\nHost: h\r\n' + DIGEST('hub-1') + '\r\n')
  await hidden.untilText('\r\n\r\n')
  t.equal(hidden.text, 'GET /ok HTTP/1.1\r\nHost: h\r\n\r\n', 'the same connection serves the next client')
  next.destroy()
  await hidden.untilClosed()
})

t.test('unknown IDs are throttled per address, and a throttled address cannot tell known IDs apart', async t => {
  const relay = await startRelay({ plugin: { unknownIdFailures: { perAddress: 5, window: 60_000, coolOff: 30_000 } } })
  t.teardown(relay.close)
  const ask = async (id: string, method = 'GET'): Promise<string> => {
    const c = await relay.open()
    c.write(`${method} / HTTP/1.1\r\nHost: h\r\n` + DIGEST(id) + '\r\n')
    await c.untilClosed()
    return c.text
  }
  for (let i = 0; i < 4; i++) t.equal(statusOf(await ask(`guess-${i}`)), 404, 'up to the limit, each guess is told no')
  t.equal(await ask('guess-4'), 'HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 29\r\nConnection: close\r\n\r\nno hidden server has this ID\n',
    'the 404 in the form of every other refusal')
  const tripped = await ask('guess-5')
  t.equal(statusOf(tripped), 429, 'the guess after the limit')
  t.match(tripped, /\r\nRetry-After: 30\r\n/i)
  const hidden = await relay.park('hub-1')
  // Retry-After counts down the cool-off; everything else must be the same bytes.
  const same = (text: string): string => text.replace(/\r\nRetry-After: \d+\r\n/, '\r\nRetry-After: N\r\n')
  for (const method of ['GET', 'HEAD']) {
    const unknown = await ask('guess-6', method)
    const known = await ask('hub-1', method)
    t.equal(statusOf(known), 429, `${method}: a known ID gets 429 while the address cools off`)
    t.equal(same(known), same(unknown), `${method}: byte for byte the answer an unknown ID gets`)
    t.notMatch(unknown, /\r\nDate:/i, `${method}: no Date on either`)
  }
  await stillUnused(t, relay, hidden)
  hidden.destroy()
  await untilParked(relay, 0)
})
