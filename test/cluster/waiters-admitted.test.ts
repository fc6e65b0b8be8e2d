import t from 'tap'
import { SECRET } from '../helpers/fixtures'
import { until } from '../helpers/until'
import { tcpFrom, WireClient } from '../helpers/wire'
import { startNode } from './nodes'
import { redisMissing, startRedis } from './redis-server'

// Skipped only where redis-server is not installed; .ci/run installs it.
const skip = redisMissing() ?? false

/*
 * In cluster mode a waiting client asks the other nodes every retryInterval
 * and waits here in between, taking its place again each time. Each new
 * wait was checked against the waiting limits anew, so a client let in was
 * refused 503 partway through its wait once others had filled the places.
 */
t.test('cluster mode: a client let in to wait is not refused later in its wait', { skip }, async t => {
  const redis = await startRedis(t)
  // Four places for the ID: one address's share is 1, binding once no more than one place is left.
  const node = await startNode('a', redis.url, { waitTimeout: 5000, maxWaitersPerId: 4 })
  t.teardown(async () => { await node.close() })
  await node.app.rendezvous.registry.add({ id: 'hub-w', secret: SECRET })
  await until(() => node.app.rendezvous.registry.get('hub-w') !== undefined, 5000, 'the ID known to the node')

  const clients: WireClient[] = []
  t.teardown(() => { for (const c of clients) c.socket.destroy() })
  for (const [address, path] of [['127.0.0.2', '/c0'], ['127.0.0.2', '/c1'], ['127.0.0.2', '/c2'], ['127.0.0.3', '/c3']]) {
    const client = new WireClient(await tcpFrom(node.port, address!))
    client.write(`GET ${path!} HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="hub-w"\r\n\r\n`)
    clients.push(client)
    await until(() => node.app.rendezvous.stats().waiting === clients.length, 3000, `${path!} waiting`)
  }
  // Several rounds of asking the other nodes (every 250 ms by default).
  await new Promise(resolve => setTimeout(resolve, 1200))
  t.same(clients.map(c => c.text), ['', '', '', ''], 'none refused while it waits')

  const hidden: WireClient[] = []
  for (let i = 0; i < 4; i++) hidden.push(await node.park('hub-w', SECRET))
  t.teardown(() => { for (const h of hidden) h.socket.destroy() })
  await Promise.all(hidden.map(async h => await h.untilText('\r\n\r\n')))
  t.same(hidden.map(h => /^GET (\/c\d) /.exec(h.text)?.[1]).sort(), ['/c0', '/c1', '/c2', '/c3'], 'each was served')
})
