import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import t from 'tap'
import { addressKeyer } from '../../lib/relay/address-group'
import { capConnections, type CapRefusal } from '../../lib/relay/connection-cap'

// One relay may listen with more than one server (Fastify's second server
// for `localhost`): a client holds its connections to all of them under one
// count, and the total is one too.

type Test = Parameters<Parameters<typeof t.test>[0]>[0]

async function listening (t: Test): Promise<{ server: Server, port: number }> {
  const server = createServer(socket => { socket.on('error', () => {}) })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { await new Promise(resolve => server.close(resolve)) })
  return { server, port: (server.address() as AddressInfo).port }
}

/** Connects; resolves with whether the server closed the connection within `ms`, and the socket. */
async function attempt (port: number, ms = 300): Promise<{ closed: boolean, socket: Socket }> {
  const socket = connect({ port, host: '127.0.0.1' })
  socket.on('error', () => {})
  socket.resume()
  const closed = await new Promise<boolean>(resolve => {
    const timer = setTimeout(() => resolve(false), ms)
    socket.once('close', () => { clearTimeout(timer); resolve(true) })
  })
  return { closed, socket }
}

for (const [limits, reason] of [[{ perAddress: 2, total: 0 }, 'per_address_cap'], [{ perAddress: 0, total: 2 }, 'total_cap']] as const) {
  t.test(`${reason}: the connections to every server the cap was added to count together`, async t => {
    const a = await listening(t)
    const b = await listening(t)
    const refused: CapRefusal[] = []
    const cap = capConnections(a.server, limits, addressKeyer(64), r => refused.push(r))
    cap.add(b.server)
    const first = await attempt(a.port)
    const second = await attempt(b.port)
    t.same([first.closed, second.closed], [false, false], 'one on each server')
    const third = await attempt(b.port)
    t.ok(third.closed, 'a third, on either, is closed at accept')
    t.same(refused.map(r => [r.reason, r.address]), [[reason, '127.0.0.1']])
    first.socket.destroy()
    await new Promise(resolve => setTimeout(resolve, 100))
    const fourth = await attempt(b.port)
    t.notOk(fourth.closed, 'a close on one server frees a place on the other')
    cap.remove()
    const free = await Promise.all([attempt(a.port), attempt(b.port)])
    t.same(free.map(f => f.closed), [false, false], 'removed from both servers')
    for (const s of [second, fourth, ...free]) s.socket.destroy()
  })
}
