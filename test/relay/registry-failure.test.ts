import t from 'tap'
import { MemoryRegistry, type Registry } from '../../lib/index'
import { SECRET } from '../helpers/fixtures'
import { createV1Token } from '../../lib/tokens/v1'
import { startRendezvous, type TestRendezvous } from '../helpers/rendezvous'
import { statusOf } from '../helpers/wire'

/*
 * An app may bring its own registry, backed by a store that can fail. Its
 * get() runs inside Node's header callback, where a throw used to take the
 * whole process down: every route of the app, with no answer to the client.
 * Now the request gets a 500 and the app goes on.
 */
type Mode = 'ok' | 'throw' | 'promise' | 'rejected'

function failingRegistry (inner: MemoryRegistry, failure: { mode: Mode }): Registry {
  return {
    ready: async () => await inner.ready(),
    get: (id: string) => {
      if (failure.mode === 'throw') throw new Error('store down')
      if (failure.mode === 'promise') return Promise.resolve(inner.get(id)) as never
      if (failure.mode === 'rejected') return Promise.reject(new Error('store down')) as never
      return inner.get(id)
    },
    list: async () => await inner.list(),
    add: async (input) => await inner.add(input),
    remove: async (id) => await inner.remove(id),
    onRemove: (listener) => inner.onRemove(listener),
    close: async () => await inner.close()
  }
}

async function ask (relay: TestRendezvous, head: string): Promise<string> {
  const wire = await relay.open()
  wire.write(head)
  await wire.untilClosed()
  return wire.text
}

const basic = (user: string): string => `Authorization: Basic ${Buffer.from(`${user}:pw`).toString('base64')}`

const HOW: Record<Exclude<Mode, 'ok'>, string> = { throw: 'throws', promise: 'returns a promise', rejected: 'returns a promise that rejects' }

for (const mode of ['throw', 'promise', 'rejected'] as const) {
  t.test(`a registry whose get() ${HOW[mode]}: 500 for the request and for a CONNECT, the app lives on`, async t => {
    const inner = new MemoryRegistry()
    await inner.add({ id: 'hub-1', secret: SECRET })
    const failure: { mode: Mode } = { mode: 'ok' }
    const relay = await startRendezvous({
      plugin: { registry: failingRegistry(inner, failure) },
      after: app => { app.get('/own', async () => 'own route') }
    })
    t.teardown(relay.close)
    failure.mode = mode
    for (const user of ['hub-1', 'alice']) {
      const text = await ask(relay, `GET /own HTTP/1.1\r\nHost: x\r\n${basic(user)}\r\nConnection: close\r\n\r\n`)
      t.equal(statusOf(text), 500, `a Basic credential for ${user}`)
      t.match(text, /\r\nConnection: close\r\n/)
    }
    const websocket = await ask(relay, 'GET /ws?rendezvous=hub-1 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n')
    t.equal(statusOf(websocket), 500, 'a WebSocket naming an ID')
    const connect = await ask(relay, `CONNECT uuid:hub-1?response=${createV1Token('hub-1', SECRET)} HTTP/1.1\r\nHost: x\r\n\r\n`)
    t.equal(statusOf(connect), 500, 'a CONNECT')
    // An unhandled rejection would end this process a tick later.
    await new Promise(resolve => setTimeout(resolve, 50))
    const plain = await ask(relay, 'GET /own HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    t.equal(statusOf(plain), 200, 'the app still answers')
    t.ok(plain.endsWith('own route'))
    failure.mode = 'ok'
    const parked = await relay.park('hub-1')
    const relayed = await relay.open()
    relayed.write(`GET /r HTTP/1.1\r\nHost: x\r\n${basic('hub-1')}\r\n\r\n`)
    await parked.untilText('\r\n\r\n')
    t.equal(parked.text, 'GET /r HTTP/1.1\r\nHost: x\r\n\r\n', 'relays again once the store is back')
    parked.destroy()
    relayed.destroy()
  })
}
