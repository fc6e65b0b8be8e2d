import t from 'tap'
import { MAX_CONNECTING, RendezvousAgent } from '../../lib/agent/agent'
import { tlsCert } from '../helpers/tls'
import { FakeRendezvous, TEST_ID, TEST_SECRET } from './fake-rendezvous'
import { echoServer, readAll, sleep } from './helpers'
import { until } from '../helpers/until'

t.test('keeps the pool parked with fresh tokens and refills it under a burst of takes', async (t) => {
  const fake = await new FakeRendezvous({ id: TEST_ID, secret: TEST_SECRET }).listen()
  const echo = await echoServer()
  t.teardown(() => fake.close())
  t.teardown(() => echo.server.close())

  const agent = new RendezvousAgent({ url: fake.url, id: TEST_ID.toUpperCase(), secret: TEST_SECRET, to: echo.url, ca: tlsCert, pool: 4 })
  const parkedEvents: number[] = []
  agent.on('parked', ({ parked }) => parkedEvents.push(parked))
  t.teardown(() => agent.close())

  await agent.start()
  await fake.waitParked(4)
  t.equal(fake.connects.length, 4, 'exactly pool-size CONNECTs')
  t.ok(fake.connects.every((c) => c.tokenOk), 'every token verifies, none is replayed')
  t.ok(fake.connects.every((c) => c.target === `uuid:${TEST_ID}`), 'the ID is sent in canonical lower case')
  t.ok(fake.connects.every((c) => c.host === `127.0.0.1:${fake.port}`), 'Host names the rendezvous')
  // The fake has written its 200s; the agent may not have read them all yet.
  await until(() => agent.stats.parked === 4, 2000, 'the agent to see four 200s')
  t.match(agent.stats, { parked: 4, connecting: 0, taken: 0, attempts: 4 })

  // Six takes at once: more than were parked, so replacements must be taken too.
  const answers: Array<Promise<Buffer>> = []
  for (let i = 0; i < 4; i++) {
    answers.push(readAll(fake.take(`GET /burst/${i} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)))
  }
  await fake.waitParked(2)
  for (let i = 4; i < 6; i++) {
    answers.push(readAll(fake.take(`GET /burst/${i} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)))
  }
  const bodies = (await Promise.all(answers)).map((b) => b.toString())
  bodies.forEach((body, i) => t.match(body, new RegExp(`^HTTP/1\\.1 200 OK\\r\\n[^]*\\r\\n\\r\\nGET /burst/${i} $`), `take ${i} answered by the local service`))

  await fake.waitParked(4)
  await until(() => agent.stats.active === 0 && agent.stats.parked === 4, 5000, 'relays to finish')
  t.equal(fake.parked.length, 4, 'the pool is full again')
  t.equal(fake.connects.length, 10, 'one replacement per take, no more')
  t.equal(fake.extraBytes, 0, 'never a byte on a parked socket or after a CONNECT head')
  t.match(agent.stats, { parked: 4, taken: 6, attempts: 10, failures: 0, dropped: 0 })
})

t.test('close() ends parked connections and makes no further attempts', async (t) => {
  const fake = await new FakeRendezvous({ id: TEST_ID, secret: TEST_SECRET }).listen()
  const echo = await echoServer()
  t.teardown(() => fake.close())
  t.teardown(() => echo.server.close())
  const agent = new RendezvousAgent({ url: fake.url, id: TEST_ID, secret: TEST_SECRET, to: echo.url, ca: tlsCert, pool: 2 })
  await agent.start()
  await fake.waitParked(2)
  let closed = false
  agent.on('close', () => { closed = true })
  await agent.close()
  t.ok(closed, 'emits close')
  await until(() => fake.parked.length === 0, 2000, 'parked sockets to close')
  const attempts = fake.connects.length
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.equal(fake.connects.length, attempts, 'no attempt after close')
  t.match(agent.stats, { parked: 0, connecting: 0 })
})

t.test('a large pool ramps up: at most MAX_CONNECTING CONNECTs in flight, and close() waits no longer than its grace for them', async (t) => {
  // The first CONNECT parks; every later one is never answered, so nothing in flight ever completes.
  const fake = await new FakeRendezvous({ id: TEST_ID, secret: TEST_SECRET, answer: (n) => n === 0 ? { kind: 'park' } : { kind: 'hang' } }).listen()
  t.teardown(() => fake.close())
  const agent = new RendezvousAgent({ url: fake.url, id: TEST_ID, secret: TEST_SECRET, to: 'http://127.0.0.1:2', ca: tlsCert, pool: 1024 })
  t.teardown(() => agent.close())
  await agent.start()
  t.equal(MAX_CONNECTING, 8)
  await until(() => fake.connects.length === 1 + MAX_CONNECTING, 5000, 'the ramp to open')
  await sleep(500)
  t.equal(fake.connects.length, 1 + MAX_CONNECTING, 'no more CONNECTs while those are unanswered')
  t.equal(fake.tcp, 1 + MAX_CONNECTING, 'nor TCP connections')
  t.match(agent.stats, { parked: 1, connecting: MAX_CONNECTING, attempts: 1 + MAX_CONNECTING })
  // A CONNECT in flight may be parked already, with a request on its way: close() gives it the grace, no more.
  const closing = Date.now()
  await agent.close()
  const took = Date.now() - closing
  t.ok(took >= 1500 && took < 3000, `closed in ${took} ms: the unanswered CONNECTs had the 2 s grace, then were aborted`)
  t.equal(agent.stats.connecting, 0)
})

t.test('pool above MAX_POOL is refused', async (t) => {
  t.throws(() => new RendezvousAgent({ url: 'https://127.0.0.1:1', id: TEST_ID, secret: TEST_SECRET, to: 'http://127.0.0.1:2', pool: 1025 }),
    { code: 'FST_RENDEZVOUS_AGENT_BAD_OPTION', option: 'pool', message: 'RendezvousAgent: pool must be an integer from 1 to 1024' })
})
