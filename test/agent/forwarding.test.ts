import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import http from 'node:http'
import net from 'node:net'
import tls from 'node:tls'
import { RendezvousAgent } from '../../lib/agent/agent'
import { tlsCert, tlsKey } from '../helpers/tls'
import { FakeRendezvous, TEST_ID, TEST_SECRET, type Answer } from './fake-rendezvous'
import { type TapTest, echoServer, readAll, readUntil, sleep } from './helpers'
import { until } from '../helpers/until'
import { defaultSplicePath, splicerFor } from '../../lib/relay/native-addon'

const POST = 'POST /with-200 HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\nConnection: close\r\n\r\nhello world'

async function fake (t: TapTest, opts: { plain?: boolean, answer?: (n: number) => Answer } = {}): Promise<FakeRendezvous> {
  const f = await new FakeRendezvous({ id: TEST_ID, secret: TEST_SECRET, ...opts }).listen()
  t.teardown(() => f.close())
  return f
}

t.test('to: bytes that arrive with the 200 are relayed first', async (t) => {
  const f = await fake(t, { answer: (n) => n === 0 ? { kind: 'park', with: POST } : { kind: 'park' } })
  const echo = await echoServer()
  t.teardown(() => echo.server.close())
  const taken = once(f, 'takenAtOnce')
  const agent = new RendezvousAgent({ url: f.url, id: TEST_ID, secret: TEST_SECRET, to: echo.url, ca: tlsCert, pool: 2 })
  t.teardown(() => agent.close())
  await agent.start()
  const [socket] = await taken as [net.Socket]
  const answer = (await readAll(socket)).toString()
  t.match(answer, /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nPOST \/with-200 hello world$/)
  t.equal(echo.requests[0]?.body, 'hello world')
  await f.waitParked(2)
  t.equal(agent.stats.taken, 1)
})

for (const plain of [false, true]) {
  t.test(`server (${plain ? 'http' : 'https'}): head with the 200, the rest later, then a pipelined request`, async (t) => {
    const first = 'POST /one HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234'
    const f = await fake(t, { plain, answer: (n) => n === 0 ? { kind: 'park', with: first } : { kind: 'park' } })
    const seen: string[] = []
    const server = http.createServer((req, res) => {
      let body = ''
      req.setEncoding('latin1')
      req.on('data', (c: string) => { body += c })
      req.on('end', () => {
        seen.push(`${req.method} ${req.url} ${body} ${String(req.headers['x-two'] ?? '')}`)
        res.end(`got ${req.url}`)
      })
    })
    const taken = once(f, 'takenAtOnce')
    const agent = new RendezvousAgent({ url: f.url, id: TEST_ID, secret: TEST_SECRET, server, ca: plain ? undefined : tlsCert, pool: 1 })
    t.teardown(() => agent.close())
    await agent.start()
    const [socket] = await taken as [net.Socket]
    await sleep(50)
    socket.write('56789GET /two HTTP/1.1\r\nHost: x\r\nX-Two: yes\r\n\r\n')
    const answers = await readUntil(socket, 'got /two')
    t.match(answers, /got \/one[^]*got \/two/)
    t.same(seen, ['POST /one 0123456789 ', 'GET /two  yes'])
    socket.destroy()
    await until(() => agent.stats.active === 0, 2000, 'release')
  })
}

/** Listens `local` on loopback and starts an agent relaying to it, with one connection parked at `f`. */
async function agentTo (t: TapTest, f: FakeRendezvous, local: net.Server, plain: boolean): Promise<RendezvousAgent> {
  local.listen(0, '127.0.0.1')
  await once(local, 'listening')
  t.teardown(() => local.close())
  const secure = local instanceof tls.Server
  const to = `${secure ? 'https' : 'http'}://127.0.0.1:${(local.address() as net.AddressInfo).port}`
  const agent = new RendezvousAgent({ url: f.url, id: TEST_ID, secret: TEST_SECRET, to, toCa: secure ? tlsCert : undefined, ca: plain ? undefined : tlsCert, pool: 1 })
  t.teardown(() => agent.close())
  await agent.start()
  await f.waitParked(1)
  return agent
}

/** A local service over plain TCP or TLS, half-open either way, as the half-close tests need. */
function halfOpenService (backend: 'http' | 'https', onSocket: (s: net.Socket) => void): net.Server {
  return backend === 'http'
    ? net.createServer({ allowHalfOpen: true }, onSocket)
    : tls.createServer({ key: tlsKey, cert: tlsCert, allowHalfOpen: true }, onSocket)
}

// A plain rendezvous connection to a plain local service takes the native data path where it is loaded.
const expectedPath = (plain: boolean): 'native' | 'js' =>
  plain && splicerFor(defaultSplicePath()) !== undefined ? 'native' : 'js'

for (const plain of [false, true]) {
  const scheme = plain ? 'http' : 'https'
  t.test(`to (${scheme} rendezvous): megabytes both ways, with backpressure, byte for byte, on the ${expectedPath(plain)} path`, async (t) => {
    const f = await fake(t, { plain })
    const upload = randomBytes(4 * 1024 * 1024)
    const download = randomBytes(6 * 1024 * 1024)
    let received = ''
    const local = http.createServer((req, res) => {
      const hash = createHash('sha256')
      req.on('data', (c: Buffer) => hash.update(c))
      req.on('end', () => {
        received = hash.digest('hex')
        res.writeHead(200, { 'content-length': download.length, connection: 'close' })
        res.end(download)
      })
    })
    const agent = await agentTo(t, f, local, plain)
    const relayed = once(agent, 'relayed')
    const socket = f.take(`POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: ${upload.length}\r\n\r\n`)
    socket.write(upload)
    const answer = await readAll(socket)
    const split = answer.indexOf('\r\n\r\n') + 4
    t.equal(received, createHash('sha256').update(upload).digest('hex'), 'upload intact')
    t.equal(answer.length - split, download.length, 'download complete')
    t.ok(answer.subarray(split).equals(download), 'download intact')
    const [info] = await relayed as [{ path?: string, request?: string, error?: Error }]
    t.equal(info.path, expectedPath(plain), 'the data path taken')
    t.equal(info.request, 'POST /big')
    t.equal(info.error, undefined)
  })

  for (const backend of ['http', 'https'] as const) {
    t.test(`to (${scheme} rendezvous, ${backend} backend): a mobile client's FIN reaches the local service, and its answer still comes back whole`, async (t) => {
      const f = await fake(t, { plain })
      const answer = randomBytes(256 * 1024)
      // Answers only after the request side has ended: what a half-closing client relies on.
      let sawHead!: () => void
      const headSeen = new Promise<void>(resolve => { sawHead = resolve })
      const local = halfOpenService(backend, (s) => {
        const got: Buffer[] = []
        s.on('data', (c: Buffer) => { got.push(c); sawHead() })
        s.on('end', () => {
          s.write(Buffer.concat(got).subarray(0, 16))
          s.end(answer)
        })
      })
      await agentTo(t, f, local, plain)
      const socket = f.take('PUT /half HTTP/1.0\r\n\r\n')
      const got = readAll(socket)
      await headSeen
      socket.end('the request body')
      const all = await got
      t.equal(all.subarray(0, 16).toString(), 'PUT /half HTTP/1', 'the local service saw the request, head first')
      t.ok(all.subarray(16).equals(answer), 'the whole answer, after the FIN went through')
    })

    t.test(`to (${scheme} rendezvous, ${backend} backend): a request and its FIN in one go still get the whole answer`, async (t) => {
      const f = await fake(t, { plain })
      const answer = randomBytes(200 * 1024)
      // Answers only at the request's end, as a backend reading to EOF does.
      const local = halfOpenService(backend, (s) => {
        s.resume()
        s.on('end', () => s.end(answer))
      })
      const agent = await agentTo(t, f, local, plain)
      // The FIN reaches the agent while it is still dialling the local service: three times, as it is a race.
      for (let i = 0; i < 3; i++) {
        await f.waitParked(1)
        const socket = f.take('GET /at-once HTTP/1.1\r\nHost: x\r\n\r\n')
        socket.end()
        const all = await readAll(socket)
        t.equal(all.length, answer.length, `exchange ${i}: all of the answer`)
        t.ok(all.equals(answer), `exchange ${i}: byte for byte`)
      }
      t.equal(agent.stats.taken, 3)
    })

    t.test(`to (${scheme} rendezvous, ${backend} backend): a local service's FIN reaches the mobile client, which can still send after it`, async (t) => {
      const f = await fake(t, { plain })
      let resolveLocal!: (b: Buffer) => void
      const localGot = new Promise<Buffer>(resolve => { resolveLocal = resolve })
      const local = halfOpenService(backend, (s) => {
        const got: Buffer[] = []
        s.once('data', () => s.end('answer, then FIN'))
        s.on('data', (c: Buffer) => got.push(c))
        s.on('end', () => resolveLocal(Buffer.concat(got)))
      })
      await agentTo(t, f, local, plain)
      const socket = f.take('POST /late HTTP/1.0\r\n\r\n')
      socket.allowHalfOpen = true
      const answer: Buffer[] = []
      socket.on('data', (c: Buffer) => answer.push(c))
      socket.resume()
      await once(socket, 'end')
      t.equal(Buffer.concat(answer).toString(), 'answer, then FIN')
      socket.end('sent after the FIN came')
      t.equal((await localGot).toString(), 'POST /late HTTP/1.0\r\n\r\nsent after the FIN came')
    })
  }

  t.test(`to (${scheme} rendezvous): when the mobile side goes away, the local connection is closed`, async (t) => {
    const f = await fake(t, { plain })
    const closed: string[] = []
    const local = net.createServer((s) => {
      s.on('data', () => {})
      s.on('close', () => closed.push('local'))
    })
    const agent = await agentTo(t, f, local, plain)
    const socket = f.take('GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n')
    await until(() => agent.stats.active === 1)
    await sleep(50)
    socket.destroy()
    await until(() => closed.length === 1, 3000, 'the local side to close')
    await until(() => agent.stats.active === 0, 3000, 'release')
  })

  t.test(`to (${scheme} rendezvous): an unreachable local service gets the mobile client a 502`, async (t) => {
    const f = await fake(t, { plain })
    const dead = net.createServer()
    dead.listen(0, '127.0.0.1')
    await once(dead, 'listening')
    const port = (dead.address() as net.AddressInfo).port
    await new Promise((resolve) => dead.close(resolve))
    const agent = new RendezvousAgent({ url: f.url, id: TEST_ID, secret: TEST_SECRET, to: `http://127.0.0.1:${port}`, ca: plain ? undefined : tlsCert, pool: 1 })
    const errors: string[] = []
    agent.on('error', (err, phase) => errors.push(`${phase}:${(err as { code?: string }).code}`))
    t.teardown(() => agent.close())
    await agent.start()
    await f.waitParked(1)
    const answer = (await readAll(f.take('GET / HTTP/1.1\r\nHost: x\r\n\r\n'))).toString()
    t.match(answer, /^HTTP\/1\.1 502 Bad Gateway\r\n/)
    t.same(errors, ['relay:ECONNREFUSED'])
  })
}
