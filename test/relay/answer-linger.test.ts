import t, { type Test } from 'tap'
import { clientErrorHandler } from '../../lib/http/client-error'
import { startRendezvous, untilParked, type TestRendezvous } from '../helpers/rendezvous'
import { statusOf, type WireClient } from '../helpers/wire'

// The answers to requests that reach Fastify (the challenge, given through
// Fastify's reply, and the 404 and 429 for unknown IDs, written on the socket
// as the relay's own refusals are) end the connection
// while the client may still be uploading the body they refuse. Closed at
// once, the client's unread bytes make the kernel reset the connection, and a
// client still sending loses the answer with it: they must close as the
// relay's other refusals do, reading and dropping the rest.

// More than the kernel buffers between the two hold: the client is still sending when the answer comes.
const SIZE = 32 * 1024 * 1024

function basic (user: string): string {
  return `Authorization: Basic ${Buffer.from(`${user}:x`).toString('base64')}\r\n`
}

/** Sends a head and a body it does not read meanwhile; resolves with the body's write error, if any. */
function upload (client: WireClient, head: string): Promise<Error | null | undefined> {
  client.socket.pause()
  client.write(`POST /upload HTTP/1.1\r\nHost: h\r\n${head}Content-Length: ${SIZE}\r\n\r\n`)
  return new Promise(resolve => client.socket.write(Buffer.alloc(SIZE, 'u'), resolve))
}

async function answerAfterUpload (t: Test, relay: TestRendezvous, head: string, status: number): Promise<string> {
  const client = await relay.open()
  const uploaded = upload(client, head)
  t.notOk(await uploaded, `${status}: the client could send its whole body: the relay read and dropped it`)
  client.socket.resume()
  await client.until(c => c.ended, 10_000, 'the answer and a FIN')
  t.equal(statusOf(client.text), status, `${status}: the answer arrived`)
  t.match(client.text, /\r\nConnection: close\r\n/i)
  client.socket.end()
  await client.untilClosed()
  return client.text
}

for (const tls of [false, true]) {
  t.test(`${tls ? 'https' : 'http'}: answers to requests that reached Fastify`, async t => {
    const relay = await startRendezvous({ tls, plugin: { unknownIdFailures: { perAddress: 2 } } })
    t.teardown(relay.close)

    t.test('a challenge that closes the connection reaches a client still uploading', async t => {
      await answerAfterUpload(t, relay, 'Connection: close\r\n', 401)
    })

    t.test('a 404 for an unknown ID, then the 429 of its cool-off, reach a client still uploading', async t => {
      const text = await answerAfterUpload(t, relay, basic('nobody-1'), 404)
      t.match(text, /no hidden server has this ID\n$/)
      await answerAfterUpload(t, relay, basic('nobody-2'), 404)
      t.match(await answerAfterUpload(t, relay, basic('nobody-3'), 429), /\r\nRetry-After: \d+\r\n/)
    })
  })
}

t.test('lingerTimeout bounds the linger of a client that never closes', async t => {
  const relay = await startRendezvous({ plugin: { lingerTimeout: 300 } })
  t.teardown(relay.close)
  // Half-open, so that the relay's FIN does not end the client's side too.
  const client = await relay.open(true)
  client.write('POST / HTTP/1.1\r\nHost: h\r\nConnection: close\r\nContent-Length: 1000000000\r\n\r\n')
  await client.until(c => c.ended, 5000, 'the challenge and a FIN')
  t.equal(statusOf(client.text), 401)
  const ended = Date.now()
  // The client neither closes nor stops sending its body: the relay closes its end after lingerTimeout.
  const sending = setInterval(() => { if (!client.closed) client.write('still here\r\n') }, 50)
  t.teardown(() => clearInterval(sending))
  await client.untilClosed(5000)
  const after = Date.now() - ended
  t.ok(after >= 250 && after < 2000, `closed after the linger (${after} ms)`)
})

t.test('a request pipelined behind one that closed the connection gets no answer and reaches no hidden server', async t => {
  for (const tls of [false, true]) {
    const relay = await startRendezvous({ tls, fastify: { clientErrorHandler } })
    t.teardown(relay.close)
    const hidden = await relay.park('hub-1')
    const client = await relay.open()
    client.write('GET /first HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n' +
      `GET /second HTTP/1.1\r\nHost: h\r\n${basic('hub-1')}\r\n`)
    await client.until(c => c.ended, 5000, 'the challenge and a FIN')
    await new Promise(resolve => setTimeout(resolve, 200))
    t.equal(statusOf(client.text), 401, `${tls ? 'https' : 'http'}: the first request's answer`)
    t.equal(client.text.match(/HTTP\/1\.1 \d{3} /g)?.length, 1, 'and no other: the second request was never processed')
    t.equal(hidden.received.length, 0, 'the hidden server got nothing')
    t.notMatch(await relay.app.rendezvous.metrics!.metrics(), /rendezvous_refusals_total\{[^}]*reason="malformed_head"\} [1-9]/, 'and no refusal was counted')
    await untilParked(relay, 1)
    client.destroy()
  }
})

t.test('a client that stops its upload once refused gets that one answer, and no refusal of the parser is counted', async t => {
  for (const tls of [false, true]) {
    const relay = await startRendezvous({ tls, fastify: { clientErrorHandler } })
    t.teardown(relay.close)
    for (const [what, head, status] of [['unknown ID', basic('nobody'), 404], ['challenge that closes', 'Connection: close\r\n', 401]] as const) {
      // Half-open: its FIN ends only the client's sending side, mid-body, and it still reads.
      const client = await relay.open(true)
      client.write(`POST /upload HTTP/1.1\r\nHost: h\r\n${head}Content-Length: 100000\r\n\r\npartial`)
      await client.until(c => c.ended, 5000, 'the answer and a FIN')
      client.socket.end()
      await client.untilClosed()
      t.equal(statusOf(client.text), status, `${tls ? 'https' : 'http'}, ${what}: the answer`)
      t.equal(client.text.match(/HTTP\/1\.1 \d{3} /g)?.length, 1, 'and no other')
    }
    t.notMatch(await relay.app.rendezvous.metrics!.metrics(), /rendezvous_refusals_total\{[^}]*reason="malformed_head"\} [1-9]/, 'no refusal of the parser counted')
  }
})

t.test('a keep-alive challenge to an upload, then the client gives up the body and closes: no second answer', async t => {
  for (const tls of [false, true]) {
    const relay = await startRendezvous({ tls, fastify: { clientErrorHandler } })
    t.teardown(relay.close)
    const client = await relay.open(true)
    client.write('POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\nabc')
    await client.untilText('as the user name\n')
    client.socket.end()
    await client.untilClosed()
    t.equal(statusOf(client.text), 401, `${tls ? 'https' : 'http'}: the challenge`)
    t.equal(client.text.match(/HTTP\/1\.1 \d{3} /g)?.length, 1, 'and no other')
    t.notMatch(await relay.app.rendezvous.metrics!.metrics(), /rendezvous_refusals_total\{[^}]*reason="malformed_head"\} [1-9]/, 'no refusal of the parser counted')
  }
})
