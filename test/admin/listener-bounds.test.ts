import t from 'tap'
import net from 'node:net'
import Fastify from 'fastify'
import { Registry } from 'prom-client'
import { startRendezvous } from '../helpers/rendezvous'
import { adminCounts } from './raw'
import { TOKEN } from './helpers'
import { attachMetricsListener } from '../../lib/server/metrics-listener'
import { OWN_LISTENER_MAX_CONNECTIONS } from '../../lib/listen-own'
import { createAdminServer } from '../../lib/admin/server'
import type { AdminTarget } from '../../lib/admin/api'

/*
 * The admin and metrics listeners are bounded as the public port is: a
 * client that trickles a head or a body is cut by Node's request timeout
 * (Fastify's default is none: such a client held its connection for good),
 * and each listener holds at most OWN_LISTENER_MAX_CONNECTIONS connections,
 * so a flood of them cannot take the descriptors the relay needs. A request
 * whose client left in the middle of its body is counted once.
 */

function adminAddressOf (relay: { app: { rendezvous: { adminAddress: () => net.AddressInfo | undefined } } }): net.AddressInfo {
  const address = relay.app.rendezvous.adminAddress()
  if (address === undefined) throw new Error('the admin listener is off')
  return address
}

async function held (port: number, n: number): Promise<{ open: number, sockets: net.Socket[] }> {
  const sockets: net.Socket[] = []
  let closed = 0
  for (let i = 0; i < n; i++) {
    const s = net.connect(port, '127.0.0.1')
    s.on('error', () => {})
    s.on('close', () => { closed++ })
    await new Promise(resolve => s.once('connect', resolve))
    sockets.push(s)
  }
  await new Promise(resolve => setTimeout(resolve, 300))
  return { open: n - closed, sockets }
}

t.test('the admin listener: a request timeout, and a cap on its connections', async t => {
  const relay = await startRendezvous({ plugin: { admin: { port: 0, token: TOKEN } } })
  t.teardown(relay.close)
  const { port } = adminAddressOf(relay)
  const { open, sockets } = await held(port, OWN_LISTENER_MAX_CONNECTIONS + 20)
  t.teardown(() => { for (const s of sockets) s.destroy() })
  t.equal(open, OWN_LISTENER_MAX_CONNECTIONS, 'the ones past the cap are closed at accept')
  const admin = createAdminServer({ host: '127.0.0.1', port: 0, token: TOKEN, target: {} as unknown as AdminTarget, log: relay.app.log, count: () => {} })
  t.equal(admin.server.requestTimeout, 30_000, 'Fastify\'s default would be 0: none')
  await admin.close()
})

t.test('the metrics listener: a request timeout, and a cap on its connections', async t => {
  const app = Fastify()
  const scrape = attachMetricsListener(app, { host: '127.0.0.1', port: 0 }, '/metrics', new Registry())
  await app.ready()
  t.teardown(async () => { await app.close() })
  t.equal(scrape.server.requestTimeout, 30_000, 'Fastify\'s default would be 0: none')
  const { port } = scrape.server.address() as net.AddressInfo
  const { open, sockets } = await held(port, OWN_LISTENER_MAX_CONNECTIONS + 20)
  t.teardown(() => { for (const s of sockets) s.destroy() })
  t.equal(open, OWN_LISTENER_MAX_CONNECTIONS)
})

t.test('an admin request whose client leaves in the middle of its body is answered and counted once', async t => {
  const metrics = new Registry()
  const relay = await startRendezvous({ plugin: { metrics, admin: { port: 0, token: TOKEN } } })
  t.teardown(relay.close)
  const { port } = adminAddressOf(relay)
  for (let i = 0; i < 3; i++) {
    const s = net.connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    s.on('data', c => chunks.push(c))
    await new Promise(resolve => s.once('connect', resolve))
    s.end(`POST /api/ids HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{"id"`)
    await new Promise(resolve => s.once('close', resolve))
    t.match(Buffer.concat(chunks).toString(), /^HTTP\/1\.1 400 /)
  }
  await new Promise(resolve => setTimeout(resolve, 100))
  const counts = await adminCounts(metrics)
  t.equal(Object.values(counts).reduce((a, b) => a + b, 0), 3, `one count per answer: ${JSON.stringify(counts)}`)
})
