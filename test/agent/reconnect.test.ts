import t from 'tap'
import { once } from 'node:events'
import { RendezvousAgent } from '../../lib/agent/agent'
import { tlsCert } from '../helpers/tls'
import { FakeRendezvous, TEST_ID, TEST_SECRET } from './fake-rendezvous'
import { echoServer, sleep } from './helpers'
import { until } from '../helpers/until'

const OUTAGE_MS = Number(process.env.RECONNECT_OUTAGE_MS ?? 8000)

// With the default backoff (up to 30 s), a long outage used to leave the agent
// asleep for many seconds after the server was back.
t.test('parked again within about 2 s of the rendezvous coming back, without hammering it while down', async (t) => {
  const fake = await new FakeRendezvous({ id: TEST_ID, secret: TEST_SECRET }).listen()
  t.teardown(() => fake.close())
  const echo = await echoServer()
  t.teardown(() => echo.server.close())
  const agent = new RendezvousAgent({ url: fake.url, id: TEST_ID, secret: TEST_SECRET, to: echo.url, ca: tlsCert, pool: 2 })
  agent.on('error', () => {})
  t.teardown(() => agent.close())
  await agent.start()
  await fake.waitParked(2)

  await fake.close()
  await until(() => agent.stats.dropped === 2, 3000, 'the agent to notice')
  const before = agent.stats.attempts
  await sleep(OUTAGE_MS)
  const tries = agent.stats.attempts - before
  t.ok(tries <= 12, `${tries} full attempts (TLS and CONNECT) in ${OUTAGE_MS} ms of outage`)

  const restarted = await new FakeRendezvous({ id: TEST_ID, secret: TEST_SECRET, port: fake.port }).listen()
  t.teardown(() => restarted.close())
  const upAt = Date.now()
  await once(agent, 'parked')
  const back = Date.now() - upAt
  t.ok(back <= 2000, `parked again ${back} ms after the restart`)
  await restarted.waitParked(2, 5000)
})

// A restart soon after the last one: the backoff has not started over (that takes 5 s of stable
// parking), so only probes that watch after the drop bring the agent back in time.
t.test('a second restart within seconds of the first: parked again within about 2 s, not after the backoff', async (t) => {
  const echo = await echoServer()
  t.teardown(() => echo.server.close())
  let fake = await new FakeRendezvous({ id: TEST_ID, secret: TEST_SECRET }).listen()
  const port = fake.port
  t.teardown(() => fake.close())
  const agent = new RendezvousAgent({ url: fake.url, id: TEST_ID, secret: TEST_SECRET, to: echo.url, ca: tlsCert, pool: 2 })
  agent.on('error', () => {})
  const waits: number[] = []
  agent.on('backoff', ({ delay }) => waits.push(delay))
  t.teardown(() => agent.close())
  await agent.start()
  await fake.waitParked(2)

  for (const round of [1, 2]) {
    await fake.close()
    await until(() => agent.stats.parked === 0, 3000, 'the agent to notice')
    await sleep(round === 1 ? 2500 : 1200)
    fake = await new FakeRendezvous({ id: TEST_ID, secret: TEST_SECRET, port }).listen()
    const upAt = Date.now()
    await fake.waitParked(1, 10_000)
    const back = Date.now() - upAt
    t.ok(back <= 2500, `round ${round}: parked again ${back} ms after the restart (waits so far up to ${Math.max(...waits)} ms)`)
    await fake.waitParked(2, 5000)
  }
})
