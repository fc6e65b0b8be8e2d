import t from 'tap'
import { once } from 'node:events'
import net from 'node:net'
import { RendezvousAgent } from '../../lib/agent/agent'
import { until } from '../helpers/until'
import { FakeRendezvous, TEST_ID, TEST_SECRET } from './fake-rendezvous'
import type { TapTest } from './helpers'

/*
 * A plain CONNECT that gets a close without a byte usually means an http://
 * URL for a relay that serves TLS, and the error says so. Behind a layer-4
 * proxy whose relay is down, every attempt ends the same way: once that URL
 * has parked, the hint is wrong and is left out.
 */

/** What a layer-4 proxy with no backend does: accept, then close at once. */
async function closesAtOnce (t: TapTest, port = 0): Promise<number> {
  const server = net.createServer((s) => { s.on('error', () => {}); s.end() })
  server.listen(port, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  return (server.address() as net.AddressInfo).port
}

function connectErrors (agent: RendezvousAgent): string[] {
  const messages: string[] = []
  agent.on('error', (err, phase) => { if (phase === 'connect') messages.push(err.message) })
  return messages
}

const HINT = /if it serves TLS \(serve without --no-tls\), use https:\/\/127\.0\.0\.1:\d+/

t.test('an http:// URL that never parked: the close is explained by TLS', async (t) => {
  const port = await closesAtOnce(t)
  const agent = new RendezvousAgent({ url: `http://127.0.0.1:${port}`, id: TEST_ID, secret: TEST_SECRET, to: 'http://127.0.0.1:9', pool: 1, backoffMax: 50 })
  const errors = connectErrors(agent)
  agent.start().catch(() => {})
  t.teardown(() => agent.destroy())
  await until(() => errors.length >= 2, 5000, 'two failed attempts')
  for (const message of errors) t.match(message, HINT)
})

t.test('an http:// URL that parked before: an outage, and no word of TLS', async (t) => {
  const fake = await new FakeRendezvous({ id: TEST_ID, secret: TEST_SECRET, plain: true }).listen()
  const agent = new RendezvousAgent({ url: fake.url, id: TEST_ID, secret: TEST_SECRET, to: 'http://127.0.0.1:9', pool: 2, backoffMax: 50 })
  const errors = connectErrors(agent)
  t.teardown(() => agent.destroy())
  await agent.start()
  await fake.waitParked(2)
  // The relay goes down behind the proxy: the proxy still accepts, and closes.
  const port = fake.port
  await fake.close()
  await closesAtOnce(t, port)
  // An attempt between the two listeners may be refused instead: only the closes are what this is about.
  const closes = (): string[] => errors.filter(m => m.startsWith('the rendezvous closed the connection'))
  await until(() => closes().length >= 3, 5000, 'attempts closed by the proxy')
  for (const message of closes()) t.equal(message, 'the rendezvous closed the connection before answering')
})
