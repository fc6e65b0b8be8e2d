import t from 'tap'
import type net from 'node:net'
import { RendezvousAgent } from '../../lib/agent/agent'
import { tlsCert } from '../helpers/tls'
import { FakeRendezvous, TEST_ID, TEST_SECRET } from './fake-rendezvous'
import { until } from '../helpers/until'

t.test('connections older than maxAge are replaced, the new one first', async (t) => {
  const fake = await new FakeRendezvous({ id: TEST_ID, secret: TEST_SECRET }).listen()
  t.teardown(() => fake.close())
  const pool = 2
  const agent = new RendezvousAgent({ url: fake.url, id: TEST_ID, secret: TEST_SECRET, to: 'http://127.0.0.1:9', ca: tlsCert, pool, maxAge: 1000 })
  t.teardown(() => agent.close())
  const ages: number[] = []
  agent.on('replaced', ({ age }) => ages.push(age))

  // Whenever the server loses a parked socket, the pool must already be whole without it.
  const waitingAtClose: number[] = []
  const wasParked = new Set<net.Socket>()
  fake.on('parked', (s: net.Socket) => wasParked.add(s))
  fake.on('socketClosed', (s: net.Socket) => { if (wasParked.has(s)) waitingAtClose.push(fake.parked.length) })

  await agent.start()
  await fake.waitParked(pool)
  await until(() => agent.stats.replaced >= 4, 6000, 'four replacements')
  await until(() => fake.parked.length === pool && agent.stats.parked === pool, 2000, 'a whole pool')

  t.ok(waitingAtClose.length >= 4, `the server saw ${waitingAtClose.length} old sockets go`)
  t.ok(waitingAtClose.every((n) => n >= pool), `a whole pool was waiting each time (${waitingAtClose.join(',')})`)
  t.equal(ages.length, agent.stats.replaced)
  t.ok(ages.every((a) => a >= 0.8 * 1000 && a < 1000 + 300), `ages within the jitter: ${ages.join(',')}`)
  t.match(agent.stats, { dropped: 0, failures: 0, taken: 0 })
  t.equal(fake.connects.length, agent.stats.attempts)
})

t.test('maxAge 0 never replaces', async (t) => {
  const fake = await new FakeRendezvous({ id: TEST_ID, secret: TEST_SECRET }).listen()
  t.teardown(() => fake.close())
  const agent = new RendezvousAgent({ url: fake.url, id: TEST_ID, secret: TEST_SECRET, to: 'http://127.0.0.1:9', ca: tlsCert, pool: 1, maxAge: 0 })
  t.teardown(() => agent.close())
  await agent.start()
  await new Promise((resolve) => setTimeout(resolve, 500))
  t.match(agent.stats, { replaced: 0, attempts: 1, parked: 1 })
})
