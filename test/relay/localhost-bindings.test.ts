import type { AddressInfo } from 'node:net'
import Fastify from 'fastify'
import t from 'tap'
import rendezvous from '../../lib/index'
import { MemoryRegistry } from '../../lib/registry/memory-registry'
import { createV1Token } from '../../lib/tokens/v1'
import { openWire, statusOf } from '../helpers/wire'
import { dualStackLocalhost } from '../helpers/dual-localhost'

// An app that listens on `localhost`, where that name is both 127.0.0.1 and
// ::1: Fastify binds the second address with a server of its own, and the
// relay must work there as on the first, across the two.

t.test('listening on a dual-stack localhost, both addresses park and relay, each to the other', async t => {
  dualStackLocalhost(fn => { t.teardown(fn) })
  const registry = new MemoryRegistry()
  const { id, secret } = await registry.add({ id: 'hub-dual' })
  const app = Fastify()
  await app.register(rendezvous, { registry, waitTimeout: 2000 })
  t.teardown(async () => { await app.close() })
  await app.listen({ host: 'localhost', port: 0 })
  const { port } = app.server.address() as AddressInfo
  t.same(app.addresses().map(a => (a as AddressInfo).address).sort(), ['127.0.0.1', '::1'], 'Fastify bound both')

  for (const [hiddenAt, clientAt] of [['::1', '127.0.0.1'], ['127.0.0.1', '::1']]) {
    await t.test(`hidden server on ${hiddenAt}, client on ${clientAt}`, async t => {
      const hidden = await openWire(port, false, false, hiddenAt)
      hidden.write(`CONNECT uuid:${id}?response=${createV1Token(id, secret)} HTTP/1.1\r\nHost: localhost\r\n\r\n`)
      await hidden.untilText('\r\n\r\n')
      t.equal(hidden.text, 'HTTP/1.1 200 OK\r\n\r\n', 'parked')
      hidden.drain()
      const client = await openWire(port, false, false, clientAt)
      client.write(`GET /x HTTP/1.1\r\nHost: localhost\r\nAuthorization: Digest username="${id}"\r\n\r\n`)
      await hidden.untilText('\r\n\r\n')
      t.equal(hidden.text, 'GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n', 'the head arrived without Authorization')
      hidden.write('HTTP/1.1 204 No Content\r\n\r\n')
      await client.untilText('\r\n\r\n')
      t.equal(statusOf(client.text), 204)
      hidden.destroy()
      client.destroy()
    })
  }
})
