import t from 'tap'
import { createServer, connect, Socket, type AddressInfo, type Server } from 'node:net'
import { once } from 'node:events'
import { CONNECT_OK, challengeHeader, refusalBytes, refuse, type Refusal } from '../../lib/http/refusals'

t.test('CONNECT_OK', async (t) => {
  t.ok(Buffer.isBuffer(CONNECT_OK))
  t.equal(CONNECT_OK.toString('latin1'), 'HTTP/1.1 200 OK\r\n\r\n')
  t.equal(CONNECT_OK.length, 19)
})

t.test('refusalBytes', async (t) => {
  t.equal(refusalBytes({ status: 407 }).toString(),
    'HTTP/1.1 407 Proxy Authentication Required\r\n' +
    'Content-Type: text/plain; charset=utf-8\r\n' +
    'Content-Length: 30\r\n' +
    'Connection: close\r\n' +
    '\r\n' +
    'Proxy Authentication Required\n', 'body defaults to the reason phrase')

  t.equal(refusalBytes({ status: 503, message: 'lot full', retryAfter: 4.2, headers: { 'X-Why': 'busy' } }).toString(),
    'HTTP/1.1 503 Service Unavailable\r\n' +
    'Content-Type: text/plain; charset=utf-8\r\n' +
    'Content-Length: 9\r\n' +
    'Connection: close\r\n' +
    'Retry-After: 5\r\n' +
    'X-Why: busy\r\n' +
    '\r\n' +
    'lot full\n', 'Retry-After rounded up, extra headers after')

  t.equal(refusalBytes({ status: 503, message: 'lot full', headOnly: true }).toString(),
    'HTTP/1.1 503 Service Unavailable\r\n' +
    'Content-Type: text/plain; charset=utf-8\r\n' +
    'Content-Length: 9\r\n' +
    'Connection: close\r\n' +
    '\r\n', 'for a HEAD request: the same head, no body')

  t.equal(refusalBytes({ status: 429, retryAfter: 0 }).toString().split('\r\n')[4], 'Retry-After: 0')

  const utf8 = refusalBytes({ status: 400, message: 'caf\u00e9 \u2603' })
  t.match(utf8.toString(), /\r\nContent-Length: 10\r\n/, 'length counts UTF-8 bytes, not characters')
  t.ok(utf8.subarray(utf8.length - 10).equals(Buffer.from('caf\u00e9 \u2603\n', 'utf8')))

  const challenge = 'Digest realm="rendezvous", qop="auth, auth-int", nonce="n", opaque="o"'
  t.equal(refusalBytes({ status: 401, headers: { 'WWW-Authenticate': challenge } }).toString().split('\r\n')[4],
    `WWW-Authenticate: ${challenge}`)

  t.equal(refusalBytes({ status: 400, headers: { 'content-type': 'text/html' } }).toString().split('\r\n')[1],
    'content-type: text/html', 'a caller may replace Content-Type, in place')
  t.equal(refusalBytes({ status: 599 }).toString().split('\r\n')[0], 'HTTP/1.1 599 Unknown')
})

t.test('refusalBytes rejects what would break the framing', async (t) => {
  for (const status of [0, 99, 600, 404.5, NaN]) t.throws(() => refusalBytes({ status }), RangeError, String(status))
  for (const retryAfter of [-1, Infinity, NaN]) t.throws(() => refusalBytes({ status: 503, retryAfter }), RangeError, String(retryAfter))
  for (const name of ['Content-Length', 'connection', 'Transfer-Encoding']) {
    t.throws(() => refusalBytes({ status: 400, headers: { [name]: '1' } }), TypeError, name)
  }
  t.throws(() => refusalBytes({ status: 400, headers: { 'X-A': 'b\r\nX-Evil: 1' } }), TypeError)
  t.throws(() => refusalBytes({ status: 400, headers: { 'X A': 'b' } }), TypeError)
  t.throws(() => refusalBytes({ status: 400, headers: { '': 'b' } }), TypeError)
})

t.test('challengeHeader', async (t) => {
  const re = /^Digest realm="rendezvous", qop="auth, auth-int", nonce="([0-9a-f]{32})", opaque="([0-9a-f]{32})"$/
  const a = re.exec(challengeHeader('rendezvous'))
  const b = re.exec(challengeHeader('rendezvous'))
  t.ok(a, 'exact shape')
  t.ok(b, 'exact shape')
  t.not(a?.[1], b?.[1], 'a fresh nonce every call')
  t.not(a?.[1], a?.[2], 'nonce and opaque are independent')
  t.match(challengeHeader('a "b" \\c'), /^Digest realm="a \\"b\\" \\\\c", /, 'realm quoted')
  t.throws(() => challengeHeader('x\r\ny'), TypeError)
})

interface Pair { server: Server, client: Socket, accepted: Socket }

async function pair (t: tap.Test, clientOptions: { allowHalfOpen?: boolean } = {}): Promise<Pair> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as AddressInfo).port
  const accepted = once(server, 'connection')
  const client = connect({ port, host: '127.0.0.1', ...clientOptions })
  const [socket] = await accepted as [Socket]
  t.teardown(() => {
    client.destroy()
    socket.destroy()
    server.close()
  })
  return { server, client, accepted: socket }
}

function collect (socket: Socket): () => Buffer {
  const chunks: Buffer[] = []
  socket.on('data', (chunk: Buffer) => chunks.push(chunk))
  return () => Buffer.concat(chunks)
}

const REFUSAL: Refusal = { status: 409, message: 'bytes sent with the CONNECT head' }

t.test('refuse: the peer reads the exact answer, then the socket is destroyed', async (t) => {
  const { client, accepted } = await pair(t)
  const received = collect(client)
  const closed = once(accepted, 'close')
  refuse(accepted, REFUSAL, 10_000)
  await once(client, 'end')
  t.ok(received().equals(refusalBytes(REFUSAL)), received().toString())
  t.equal(received().toString(),
    'HTTP/1.1 409 Conflict\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 33\r\nConnection: close\r\n\r\nbytes sent with the CONNECT head\n')
  const start = Date.now()
  await closed
  t.ok(accepted.destroyed)
  t.ok(Date.now() - start < 5000, 'closed on the peer\'s FIN, not on the linger timer')
})

t.test('refuse: a peer that keeps sending still gets the whole answer', async (t) => {
  const { client, accepted } = await pair(t)
  const received = collect(client)
  const errors: Error[] = []
  client.on('error', (err) => errors.push(err))
  const closed = Promise.all([once(accepted, 'close'), once(client, 'close')])
  const junk = Buffer.alloc(256 * 1024, 0x61)
  client.write(junk)
  refuse(accepted, { status: 400, message: 'malformed target' }, 10_000)
  client.write(junk)
  await once(client, 'end')
  await closed
  t.strictSame(errors, [], 'no ECONNRESET')
  t.ok(received().equals(refusalBytes({ status: 400, message: 'malformed target' })))
  t.ok(accepted.destroyed)
})

t.test('refuse: a peer that never closes is cut off after lingerMs', async (t) => {
  const { client, accepted } = await pair(t, { allowHalfOpen: true })
  const received = collect(client)
  const closed = once(accepted, 'close')
  const start = Date.now()
  refuse(accepted, { status: 503, retryAfter: 5 }, 150)
  await once(client, 'end')
  t.ok(received().equals(refusalBytes({ status: 503, retryAfter: 5 })))
  t.notOk(accepted.destroyed, 'still waiting for the peer')
  await closed
  const elapsed = Date.now() - start
  t.ok(accepted.destroyed)
  t.ok(elapsed >= 140, `destroyed after ${elapsed} ms`)
  t.ok(elapsed < 2000, `destroyed after ${elapsed} ms`)
})

t.test('refuse: a peer that already sent its FIN', async (t) => {
  const server = createServer({ allowHalfOpen: true })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { server.close() })
  const accepted = once(server, 'connection')
  const client = connect({ port: (server.address() as AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true })
  const received = collect(client)
  const [socket] = await accepted as [Socket]
  t.teardown(() => { client.destroy(); socket.destroy() })
  client.end('GET')
  socket.resume()
  await once(socket, 'end')
  const done = Promise.all([once(socket, 'close'), once(client, 'end')])
  refuse(socket, { status: 400 }, 10_000)
  await done
  t.ok(received().equals(refusalBytes({ status: 400 })), 'answered, then destroyed without waiting for the timer')
})

t.test('refuse: an error destroys at once', async (t) => {
  const { accepted } = await pair(t, { allowHalfOpen: true })
  refuse(accepted, REFUSAL, 10_000)
  accepted.emit('error', new Error('boom'))
  t.ok(accepted.destroyed)
})

t.test('refuse: safe on destroyed and ended sockets', async (t) => {
  const never = new Socket()
  never.destroy()
  t.doesNotThrow(() => refuse(never, REFUSAL))
  t.ok(never.destroyed)

  const { client, accepted } = await pair(t)
  const received = collect(client)
  const closed = once(client, 'close')
  accepted.end()
  t.doesNotThrow(() => refuse(accepted, REFUSAL))
  t.ok(accepted.destroyed, 'a socket nobody can answer on is closed')
  await closed
  t.equal(received().length, 0, 'nothing written after end')
})
