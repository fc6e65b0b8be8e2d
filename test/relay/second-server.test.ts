import { connect as netConnect, type AddressInfo, type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import t from 'tap'
import rendezvous, { clientErrorHandler, MemoryRegistry, type RendezvousOptions } from '../../lib/index'
import { tlsCert, tlsKey } from '../helpers/tls'
import { dualStackLocalhost } from '../helpers/dual-localhost'

// An app that listens on `localhost`, where that name is both 127.0.0.1 and
// ::1, gets a second server from Fastify for ::1. The relay is hooked into it
// as into the first: a peer there gets the same answers, the same deadlines
// and the same connection caps as on 127.0.0.1.

const ADDRESSES = ['127.0.0.1', '::1'] as const

dualStackLocalhost(fn => { t.teardown(fn) })

type Test = Parameters<Parameters<typeof t.test>[0]>[0]

interface DualApp {
  app: FastifyInstance
  port: number
  /** Opens a plain TCP connection that reads and drops what it gets; it is destroyed before the app closes. */
  tcp: (host: string) => Promise<Socket>
}

// A head gets 400 ms; Node checks head deadlines every connectionsCheckingInterval (30 s by default).
const QUICK_HEADS = { headersTimeout: 400, connectionsCheckingInterval: 50 }

async function listenDual (t: Test, tls: boolean, plugin: RendezvousOptions = {}, fastify: FastifyServerOptions = {}, quickHeads = false, before?: (app: FastifyInstance) => void): Promise<DualApp> {
  const http = quickHeads ? QUICK_HEADS : {}
  const app = Fastify({
    ...(tls ? { https: { key: tlsKey, cert: tlsCert, ...http } } : { http }),
    ...fastify
  } as FastifyServerOptions)
  before?.(app)
  await app.register(rendezvous, { registry: new MemoryRegistry(), ...plugin })
  const sockets = new Set<Socket>()
  t.teardown(async () => {
    for (const s of sockets) s.destroy()
    await app.close()
  })
  await app.listen({ host: 'localhost', port: 0 })
  t.same(app.addresses().map(a => (a as AddressInfo).address).sort(), ['127.0.0.1', '::1'], 'Fastify bound both addresses')
  const port = (app.server.address() as AddressInfo).port
  const tcp = async (host: string): Promise<Socket> => {
    const s = await openTcp(host, port)
    sockets.add(s)
    return s
  }
  return { app, port, tcp }
}

interface Exchange { bytes: string, ms: number }

type Send = string | Buffer | ((socket: Socket) => void) | undefined

/** Sends `data` once connected (over TLS when `tls`), reading everything, and resolves at the close; rejects if still open after `ms`. */
async function exchange (host: string, port: number, tls: boolean, data: Send, ms = 2500): Promise<Exchange> {
  return await new Promise((resolve, reject) => {
    const socket: Socket = tls
      ? tlsConnect({ host, port, ca: tlsCert, servername: 'localhost' })
      : netConnect({ host, port })
    const started = Date.now()
    let bytes = Buffer.alloc(0)
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`still open after ${ms} ms; received ${JSON.stringify(bytes.toString('latin1'))}`))
    }, ms)
    socket.once(tls ? 'secureConnect' : 'connect', () => {
      if (typeof data === 'function') data(socket)
      else if (data !== undefined) socket.write(data)
    })
    socket.on('data', (chunk: Buffer) => { bytes = Buffer.concat([bytes, chunk]) })
    socket.on('error', () => {})
    socket.once('close', () => {
      clearTimeout(timer)
      resolve({ bytes: bytes.toString('latin1'), ms: Date.now() - started })
    })
  })
}

const REFUSED_HEADS: Array<[string, string, number]> = [
  ['a malformed head', 'GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n', 400],
  ['a head too large', `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431],
  ['a head that does not arrive in time', 'GET / HTTP/1.1\r\nHost: x\r\n', 408]
]

for (const tls of [false, true]) {
  const scheme = tls ? 'https' : 'http'
  for (const handler of ['fastify', 'package'] as const) {
    t.test(`${scheme}, ${handler}'s clientErrorHandler: what the HTTP parser refuses gets on ::1 the answer it gets on 127.0.0.1, then a close`, async t => {
      const { port } = await listenDual(t, tls, {}, handler === 'package' ? { clientErrorHandler } : {}, true)
      for (const [what, head, status] of REFUSED_HEADS) {
        await t.test(what, async t => {
          const [v4, v6] = await Promise.all(ADDRESSES.map(async host => await exchange(host, port, tls, head)))
          t.match(v4.bytes, new RegExp(`^HTTP/1\\.1 ${status} `), `${status} on 127.0.0.1`)
          t.equal(v6.bytes, v4.bytes, 'the same bytes on ::1, and a close')
        })
      }
    })
  }
}

t.test('an app that took every clientError listener off its server: both addresses answer with the package\'s refusal, then close', async t => {
  const { port } = await listenDual(t, false, {}, {}, false, app => { app.server.removeAllListeners('clientError') })
  for (const host of ADDRESSES) {
    const { bytes } = await exchange(host, port, false, 'GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n')
    t.equal(bytes, 'HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 18\r\nConnection: close\r\n\r\nmalformed request\n', host)
  }
})

// Partial handshakes: the first bytes of a ClientHello whose length OpenSSL
// refuses at once, and the first bytes of one that would be well formed, at
// once or a byte at a time.
const HELLO_START = Buffer.from('1603010200010001fc0303', 'hex')
const HANDSHAKES: Array<[string, Send]> = [
  ['no byte at all', undefined],
  ['a ClientHello OpenSSL refuses', Buffer.from('16030100050102030405', 'hex')],
  ['the start of a well-formed ClientHello', HELLO_START],
  ['a ClientHello that trickles in, a byte every 50 ms', socket => {
    let sent = 0
    const timer = setInterval(() => {
      if (socket.destroyed) clearInterval(timer)
      else socket.write(Buffer.concat([HELLO_START, Buffer.alloc(512)]).subarray(sent, ++sent))
    }, 50)
    socket.once('close', () => clearInterval(timer))
  }]
]

for (const handler of ['fastify', 'silent'] as const) {
  t.test(`https, ${handler} clientErrorHandler: a TLS handshake not done within handshakeTimeout is closed on both addresses, whatever bytes came`, async t => {
    // An app's handler may well leave alone the errors it does not answer; the deadline must hold regardless.
    const silent = { clientErrorHandler: () => {} }
    const { port } = await listenDual(t, true, { handshakeTimeout: 300 }, handler === 'silent' ? silent : {})
    for (const host of ADDRESSES) {
      for (const [what, bytes] of HANDSHAKES) {
        await t.test(`${host}, ${what}`, async t => {
          const { ms } = await exchange(host, port, false, bytes, 3000)
          // The refused ClientHello is closed at once, with an alert; the others at the deadline.
          t.ok(ms < 1500, `closed after ${ms} ms`)
        })
      }
    }
  })
}

for (const tls of [false, true]) {
  const scheme = tls ? 'https' : 'http'
  t.test(`${scheme}: maxConnectionsPerAddress applies on ::1 as on 127.0.0.1`, async t => {
    const { app, port, tcp } = await listenDual(t, tls, { maxConnectionsPerAddress: 3 })
    for (const host of ADDRESSES) {
      const held = await Promise.all([1, 2, 3].map(async () => await tcp(host)))
      const { ms } = await exchange(host, port, false, undefined, 2000)
      t.ok(ms < 300, `${host}: a fourth connection is closed at accept (${ms} ms)`)
      t.same(held.map(s => s.destroyed), [false, false, false], `${host}: the first three stay open`)
      for (const s of held) s.destroy()
    }
    t.match(await app.rendezvous.metrics!.metrics(), /rendezvous_connections_refused_total\{reason="per_address_cap"\} 2\n/, 'both refusals counted')
  })

  t.test(`${scheme}: maxConnections counts the connections of both addresses together`, async t => {
    const { app, port, tcp } = await listenDual(t, tls, { maxConnections: 3 })
    const held = [await tcp('127.0.0.1'), await tcp('127.0.0.1'), await tcp('::1')]
    for (const host of ADDRESSES) {
      const { ms } = await exchange(host, port, false, undefined, 2000)
      t.ok(ms < 300, `${host}: a fourth connection in all is closed at accept (${ms} ms)`)
    }
    t.same(held.map(s => s.destroyed), [false, false, false], 'the first three stay open')
    held[2].destroy()
    await new Promise(resolve => setTimeout(resolve, 100))
    const again = await tcp('127.0.0.1')
    await new Promise(resolve => setTimeout(resolve, 200))
    t.notOk(again.destroyed, 'a close on ::1 gives 127.0.0.1 the place back')
    for (const s of [...held, again]) s.destroy()
    t.match(await app.rendezvous.metrics!.metrics(), /rendezvous_connections_refused_total\{reason="total_cap"\} 2\n/, 'both refusals counted')
  })
}

async function openTcp (host: string, port: number): Promise<Socket> {
  return await new Promise((resolve, reject) => {
    const s = netConnect({ host, port }, () => {
      s.removeListener('error', reject)
      s.on('error', () => {})
      resolve(s)
    })
    s.once('error', reject)
    s.resume()
  })
}
