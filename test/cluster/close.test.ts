import { connect, type Socket } from 'node:net'
import t from 'tap'
import { startNode } from './nodes'
import { redisMissing, startRedis } from './redis-server'

// A node that closes must end the links other nodes still have open to its peer listener.

const skip = redisMissing() ?? false

t.test('close() ends a peer link left mid-request instead of waiting for it', { skip }, async t => {
  const redis = await startRedis(t)
  // A long forwardTimeout: the link's own timer must not be what ends it.
  const node = await startNode('a', redis.url, { cluster: { secret: 'a cluster secret for the tests', forwardTimeout: 60_000 } })
  const [host, port] = node.app.rendezvous.cluster!.peerAddress!.split(':')
  const link: Socket = connect(Number(port), host)
  t.teardown(() => link.destroy())
  await new Promise<void>((resolve, reject) => link.once('connect', resolve).once('error', reject))
  // Half a request line: the peer server is now reading this link.
  link.write('RENDEZVOUS-PEER/2 ')
  const linkClosed = new Promise<void>(resolve => link.once('close', () => resolve()))
  link.on('error', () => {})
  await new Promise(resolve => setTimeout(resolve, 200))
  const outcome = await Promise.race([
    node.close().then(() => 'closed'),
    new Promise(resolve => setTimeout(resolve, 15_000, 'still waiting after 15 s')).then(String)
  ])
  t.equal(outcome, 'closed', 'the node closed')
  await linkClosed
  t.pass('the link was ended')
})
