import t from 'tap'
import { Registry as Metrics } from 'prom-client'
import { MemoryRegistry, type Registry } from '../../lib/index'
import { OTHER_SECRET, SECRET } from '../helpers/fixtures'
import { createV1Token } from '../../lib/tokens/v1'
import { startRendezvous, type TestRendezvous } from '../helpers/rendezvous'
import { statusOf } from '../helpers/wire'

/*
 * A registry whose copy is cut off from its source (a cluster node that lost
 * Redis) cannot tell a wrong secret from one added or rotated meanwhile. A
 * CONNECT it cannot place gets 503 with Retry-After, as a mobile request
 * for an ID it lacks does, not the 401 that makes an agent give up for good.
 */

function staleRegistry (inner: MemoryRegistry, state: { stale: boolean }): Registry {
  return {
    ready: async () => await inner.ready(),
    get: (id: string) => inner.get(id),
    list: async () => await inner.list(),
    add: async (input) => await inner.add(input),
    remove: async (id) => await inner.remove(id),
    onRemove: (listener) => inner.onRemove(listener),
    stale: () => state.stale,
    close: async () => await inner.close()
  }
}

async function connect (relay: TestRendezvous, id: string, secret: string): Promise<string> {
  const wire = await relay.open()
  wire.write(`CONNECT uuid:${id}?response=${createV1Token(id, secret)} HTTP/1.1\r\nHost: x\r\n\r\n`)
  await wire.untilText('\r\n\r\n')
  wire.destroy()
  return wire.text
}

t.test('a CONNECT for an ID or secret a stale registry lacks: 503 with Retry-After, counted; 401 once it is current again', async t => {
  const inner = new MemoryRegistry()
  await inner.add({ id: 'hub-1', secret: SECRET })
  const state = { stale: true }
  const metrics = new Metrics()
  const relay = await startRendezvous({ plugin: { registry: staleRegistry(inner, state), retryAfter: 7, authFailures: { perPair: 3 }, metrics } })
  t.teardown(relay.close)

  for (const [what, id, secret] of [['an ID added meanwhile', 'hub-new', SECRET], ['a secret rotated meanwhile', 'hub-1', OTHER_SECRET]]) {
    const answer = await connect(relay, id, secret)
    t.equal(statusOf(answer), 503, what)
    t.match(answer, /\r\nRetry-After: 7\r\n/, `${what}: Retry-After`)
  }
  t.match(await metrics.metrics(), /rendezvous_connect_total\{outcome="store_unavailable"\} 2\n/, 'counted as store_unavailable')
  t.equal(statusOf(await connect(relay, 'hub-1', SECRET)), 200, 'the secret it has still parks')

  // Guesses are counted while the copy is stale: the pair cools off after perPair failures.
  t.equal(statusOf(await connect(relay, 'hub-new', SECRET)), 503, 'the second failure of one pair')
  t.equal(statusOf(await connect(relay, 'hub-new', SECRET)), 503, 'the third, which reaches the limit')
  t.equal(statusOf(await connect(relay, 'hub-new', SECRET)), 429, 'the next is cooled off')

  state.stale = false
  t.equal(statusOf(await connect(relay, 'hub-2', OTHER_SECRET)), 401, 'current again: an ID it lacks is refused')
})
