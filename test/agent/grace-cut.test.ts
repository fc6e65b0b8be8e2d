import t from 'tap'
import { once } from 'node:events'
import net from 'node:net'
import { RendezvousAgent } from '../../lib/agent/agent'
import { SECRET } from '../helpers/fixtures'
import { startRendezvous } from '../helpers/rendezvous'
import { until } from '../helpers/until'
import type { TapTest } from './helpers'

const ID = 'hub-1'

/** A local service that accepts and reads, and never answers: a request it is still working on. */
async function silentService (t: TapTest): Promise<{ url: string, received: () => string }> {
  let received = ''
  const sockets = new Set<net.Socket>()
  const server = net.createServer(socket => {
    sockets.add(socket)
    socket.on('data', (chunk: Buffer) => { received += chunk.toString('latin1') })
    socket.on('error', () => {})
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { for (const s of sockets) s.destroy(); server.close() })
  return { url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`, received: () => received }
}

t.test('a closing agent\'s grace ends while its local service has the request and has not answered: the client gets 503, then a close', async t => {
  const relay = await startRendezvous()
  t.teardown(() => relay.close())
  const service = await silentService(t)
  const agent = new RendezvousAgent({ url: `http://127.0.0.1:${relay.port}`, id: ID, secret: SECRET, to: service.url, pool: 1, closeGrace: 300 })
  t.teardown(() => agent.destroy())
  await agent.start()
  await until(() => relay.app.rendezvous.stats().parked === 1, 3000, 'the agent to park')

  const wire = await relay.open()
  wire.write(`GET /slow HTTP/1.1\r\nHost: x\r\nAuthorization: Basic ${Buffer.from(`${ID}:x`).toString('base64')}\r\n\r\n`)
  await until(() => service.received().includes('GET /slow '), 3000, 'the request at the local service')
  const asked = Date.now()
  const closing = agent.close()
  await wire.untilClosed()
  await closing
  t.match(wire.text, /^HTTP\/1\.1 503 Service Unavailable\r\n[^]*\r\n\r\nThe hidden server is shutting down\.\n$/, 'a real answer rather than a close with no bytes')
  t.ok(Date.now() - asked >= 250, `not before the grace ended (${Date.now() - asked} ms)`)
})
