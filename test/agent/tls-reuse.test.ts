import t from 'tap'
import { once } from 'node:events'
import type net from 'node:net'
import tls from 'node:tls'
import { RendezvousAgent } from '../../lib/agent/agent'
import { TlsReuse } from '../../lib/agent/tls-reuse'
import { otherCert, otherKey, tlsCert, tlsKey } from '../helpers/tls'
import { FakeRendezvous, TEST_ID, TEST_SECRET } from './fake-rendezvous'
import { echoServer, readUntil } from './helpers'

/* The agent's CONNECTs share one secure context and resume the server's TLS session. */

t.test('replacement connections resume the TLS session, and stay verified', async t => {
  const fake = await new FakeRendezvous({ id: TEST_ID, secret: TEST_SECRET }).listen()
  t.teardown(() => fake.close())
  const echo = await echoServer()
  t.teardown(() => echo.server.close())
  const agent = new RendezvousAgent({ url: fake.url, id: TEST_ID, secret: TEST_SECRET, to: echo.url, ca: tlsCert, pool: 1 })
  t.teardown(() => agent.destroy())
  await agent.start()
  await fake.waitParked(1)
  const first = fake.parked[0] as tls.TLSSocket
  t.equal(first.isSessionReused(), false, 'the first connection makes a full handshake')

  for (let i = 0; i < 2; i++) {
    const taken = fake.take(`GET /${i} HTTP/1.1\r\nHost: x\r\n\r\n`)
    t.match(await readUntil(taken, `GET /${i}`), `GET /${i}`, 'the taken connection relays')
    await fake.waitParked(1)
    const replacement = fake.parked[0] as tls.TLSSocket
    t.equal(replacement.isSessionReused(), true, `replacement ${i + 1} resumed the session`)
    taken.destroy()
  }
  t.equal(fake.goodConnects, 3, 'each connection sent its CONNECT with a good token')
})

async function tlsServer (cert: Buffer, key: Buffer): Promise<{ server: tls.Server, port: number }> {
  const server = tls.createServer({ cert, key }, socket => { socket.on('error', () => {}); socket.end('bye') })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return { server, port: (server.address() as net.AddressInfo).port }
}

// One connection to the end; whether it resumed is only known while it is open.
async function handshake (port: number, reuse: TlsReuse, accepted: (s: tls.TLSSocket) => boolean): Promise<{ authorized: boolean, resumed: boolean }> {
  const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...reuse.options(`127.0.0.1:${port}`) })
  reuse.remember(`127.0.0.1:${port}`, socket, () => accepted(socket))
  socket.on('error', () => {})
  await once(socket, 'secureConnect')
  const resumed = socket.isSessionReused()
  socket.resume()
  await once(socket, 'close')
  return { authorized: socket.authorized, resumed }
}

t.test('a ticket is kept only from a connection whose certificate was accepted, and can be forgotten', async t => {
  const { server, port } = await tlsServer(otherCert, otherKey)
  t.teardown(() => server.close())
  const reuse = new TlsReuse(tlsCert)
  const server_ = `127.0.0.1:${port}`

  const refused = await handshake(port, reuse, s => s.authorized)
  t.equal(refused.authorized, false, 'a certificate the ca does not vouch for')
  t.equal(reuse.options(server_).session, undefined, 'no ticket kept from it')

  await handshake(port, reuse, () => true)
  t.type(reuse.options(server_).session, Buffer, 'a ticket kept from an accepted connection')
  const resumed = await handshake(port, reuse, () => true)
  t.equal(resumed.resumed, true, 'the next connection resumes with it')

  reuse.forget(server_)
  t.equal(reuse.options(server_).session, undefined, 'forgotten')
})

t.test('resumption goes on for a bounded time from the full handshake it started from', async t => {
  const { server, port } = await tlsServer(tlsCert, tlsKey)
  t.teardown(() => server.close())
  let now = 1_000_000
  const reuse = new TlsReuse(tlsCert, 60_000, () => now)
  const server_ = `127.0.0.1:${port}`

  t.equal((await handshake(port, reuse, s => s.authorized)).resumed, false, 'a full handshake first')
  now += 40_000
  t.equal((await handshake(port, reuse, s => s.authorized)).resumed, true, 'resumed 40 s later')
  now += 40_000
  t.equal(reuse.options(server_).session, undefined, '80 s after the full handshake, no ticket is offered, though the last one is 40 s old')
  t.equal((await handshake(port, reuse, s => s.authorized)).resumed, false, 'so the certificate is checked again')
  now += 40_000
  t.equal((await handshake(port, reuse, s => s.authorized)).resumed, true, 'and a new chain starts from there')
})
