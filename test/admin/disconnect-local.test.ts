import t, { type Test } from 'tap'
import { MemoryRegistry } from '../../lib/index'
import type { IdentityRecord } from '../../lib/registry/registry'
import { startRendezvous as startRelay, untilParked, type TestRendezvous as Relay } from '../helpers/rendezvous'
import { SECRET } from '../helpers/fixtures'
import { until } from '../helpers/until'
import { api, TOKEN } from './helpers'

// Disconnecting cuts this node's own connections, so it needs no registry:
// while the registry cannot be read (Redis away, in cluster mode) the
// operator can still cut what is parked or spliced here.

class UnreadableRegistry extends MemoryRegistry {
  listCalls = 0
  override async list (): Promise<IdentityRecord[]> {
    this.listCalls++
    throw new Error('Redis is away')
  }
}

async function setup (t: Test): Promise<{ relay: Relay, registry: UnreadableRegistry }> {
  const registry = new UnreadableRegistry()
  await registry.add({ id: 'hub-1', secret: SECRET })
  await registry.add({ id: 'idle', secret: SECRET })
  const relay = await startRelay({ ids: [], plugin: { admin: { port: 0, token: TOKEN }, registry } })
  t.teardown(async () => { await relay.close(); await registry.close() })
  return { relay, registry }
}

t.test('with a registry that cannot be read, disconnect still closes what is parked and spliced here', async t => {
  const { relay } = await setup(t)
  const parked = await relay.park('hub-1')
  const spliced = await relay.park('hub-1')
  await untilParked(relay, 2)
  const client = await relay.open()
  client.write(`GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Basic ${Buffer.from('hub-1:x').toString('base64')}\r\n\r\n`)
  // One of the two parked connections takes the request: that pair is spliced, the other stays parked.
  await until(() => relay.app.rendezvous.stats().spliced === 1 && relay.app.rendezvous.stats().parked === 1, 3000, 'one pair spliced')
  await until(() => (parked.text + spliced.text).includes('GET / HTTP/1.1'), 3000, 'the request at a hidden server')

  const res = await api(relay, 'POST', '/api/ids/hub-1/disconnect')
  t.same([res.status, res.body], [200, { id: 'hub-1', parked: 1, spliced: 1 }])
  await Promise.all([parked.untilClosed(), spliced.untilClosed(), client.untilClosed()])
  t.pass('both hidden-side connections and the client are closed')
})

t.test('with a registry that cannot be read, an ID with nothing here is looked up in the IDs last read', async t => {
  const { relay, registry } = await setup(t)
  t.same(await api(relay, 'POST', '/api/ids/idle/disconnect').then(r => [r.status, r.body]), [200, { id: 'idle', parked: 0, spliced: 0 }], 'a known ID: nothing to cut')
  t.same(await api(relay, 'POST', '/api/ids/nobody/disconnect').then(r => [r.status, r.body]), [404, { error: 'not_found', message: 'no such ID' }], 'an unknown one')
  t.equal(registry.listCalls, 2, 'the registry was asked first each time')
})
