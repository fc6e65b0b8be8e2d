import { createServer, type AddressInfo } from 'node:net'
import Fastify from 'fastify'
import t from 'tap'
import rendezvous from '../../lib/index'
import { CLUSTER_SECRET } from './nodes'
import { redisMissing, startRedis } from './redis-server'

/*
 * A peer port already taken failed the plugin with Node's bare EADDRINUSE,
 * and serve with "cannot listen on HOST:PORT", as if it were --port: the
 * admin and metrics listeners name themselves. The peer listener now does
 * too, with the same error code.
 */

const skip = redisMissing() ?? false

t.test('a peer port in use fails the plugin with FST_RENDEZVOUS_LISTENER naming the peer listener', { skip }, async t => {
  const redis = await startRedis(t)
  const taken = createServer()
  await new Promise<void>(resolve => taken.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { taken.close() })
  const port = (taken.address() as AddressInfo).port
  const app = Fastify()
  t.teardown(async () => { await app.close() })
  app.register(rendezvous, { redis: redis.url, cluster: { secret: CLUSTER_SECRET, peerPort: port } })
  await t.rejects(async () => { await app.ready() }, {
    code: 'FST_RENDEZVOUS_LISTENER',
    message: `The peer listener cannot listen on 127.0.0.1:${port}: the port is already in use`
  })
})
