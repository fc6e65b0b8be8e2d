import t from 'tap'
import { once } from 'node:events'
import { RendezvousAgent, RendezvousAuthError } from '../../lib/agent/agent'
import { tlsCert } from '../helpers/tls'
import { FakeRendezvous, TEST_ID, TEST_SECRET, type Answer } from './fake-rendezvous'
import { type TapTest, echoServer, sleep } from './helpers'
import { until } from '../helpers/until'

const WRONG_SECRET = 'MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43UOV3HO6DZ'

async function setup (t: TapTest, answer?: (n: number) => Answer): Promise<{ fake: FakeRendezvous, to: string }> {
  const fake = await new FakeRendezvous({ id: TEST_ID, secret: TEST_SECRET, answer }).listen()
  const echo = await echoServer()
  t.teardown(() => fake.close())
  t.teardown(() => echo.server.close())
  return { fake, to: echo.url }
}

t.test('server restart: back within the backoff cap', async (t) => {
  const { fake, to } = await setup(t)
  const agent = new RendezvousAgent({ url: fake.url, id: TEST_ID, secret: TEST_SECRET, to, ca: tlsCert, pool: 2, backoffMax: 1000 })
  const delays: number[] = []
  agent.on('backoff', ({ delay }) => delays.push(delay))
  agent.on('error', () => {})
  t.teardown(() => agent.close())
  await agent.start()
  await until(() => agent.stats.parked === 2)

  await fake.close()
  await until(() => agent.stats.dropped === 2, 2000, 'the agent to notice')
  await sleep(2500)
  const downAttempts = agent.stats.attempts - 2
  t.ok(downAttempts >= 2, `kept trying while down (${downAttempts})`)
  t.ok(downAttempts <= 40, `but did not hammer (${downAttempts} attempts in 2.5 s)`)
  t.ok(delays.every((d) => d <= 1000), 'no delay above the cap')

  const restarted = await new FakeRendezvous({ id: TEST_ID, secret: TEST_SECRET, port: fake.port }).listen()
  t.teardown(() => restarted.close())
  const upAt = Date.now()
  await once(agent, 'parked')
  t.ok(Date.now() - upAt <= 1000 + 700, `parked ${Date.now() - upAt} ms after the restart`)
  await restarted.waitParked(2)
  await until(() => agent.stats.parked === 2)
})

t.test('401: the agent stops and makes no more attempts', async (t) => {
  const { fake, to } = await setup(t)
  const agent = new RendezvousAgent({ url: fake.url, id: TEST_ID, secret: WRONG_SECRET, to, ca: tlsCert, pool: 4, backoffMax: 50 })
  const fatal: Error[] = []
  agent.on('fatal', (err) => fatal.push(err))
  const closed = once(agent, 'close')
  await t.rejects(agent.start(), { code: 'RENDEZVOUS_CREDENTIALS_REFUSED', status: 401 })
  await closed
  t.equal(agent.stats.attempts, 1, 'a single probe before the pool opens')
  t.equal(fake.connects.length, 1)
  t.equal(fake.goodConnects, 0)
  await sleep(800)
  t.equal(fake.connects.length, 1, 'nothing after the refusal')
  t.equal(fatal.length, 1, 'one fatal event')
  t.ok(fatal[0] instanceof RendezvousAuthError)
  t.match(fatal[0]!.message, /refused the credentials for ID .*401.*secret/)
})

t.test('403 after a while: fatal too, and the parked connections go', async (t) => {
  const { fake, to } = await setup(t, (n) => n < 2 ? { kind: 'park' } : { kind: 'refuse', status: 403, reason: 'Forbidden' })
  const agent = new RendezvousAgent({ url: fake.url, id: TEST_ID, secret: TEST_SECRET, to, ca: tlsCert, pool: 2 })
  await agent.start()
  await fake.waitParked(2)
  const fatal = once(agent, 'fatal')
  fake.parked[0]!.destroy()
  const [err] = await fatal as [RendezvousAuthError]
  t.equal(err.status, 403)
  await until(() => fake.parked.length === 0, 2000, 'parked sockets to close')
  await sleep(500)
  t.equal(fake.connects.length, 3, 'no attempt after the 403')
})

t.test('401 after parking: what is already relayed finishes on its own, and the message says the credentials worked before', async (t) => {
  const { fake, to } = await setup(t, (n) => n === 0 ? { kind: 'park' } : { kind: 'refuse', status: 401, reason: 'Unauthorized' })
  const agent = new RendezvousAgent({ url: fake.url, id: TEST_ID, secret: TEST_SECRET, to, ca: tlsCert, pool: 1, closeGrace: 200 })
  agent.on('error', () => {})
  await agent.start()
  await fake.waitParked(1)
  const fatal = once(agent, 'fatal')
  let closed = false
  const closing = once(agent, 'close').then(() => { closed = true })
  // Taken: the replacement it parks is refused, as when the ID was removed at the rendezvous.
  const mobile = fake.take('GET /one HTTP/1.1\r\nHost: x\r\n\r\n')
  let text = ''
  mobile.on('data', (c: Buffer) => { text += c.toString('latin1') }).resume()
  const [err] = await fatal as [RendezvousAuthError]
  t.match(err.message, /now refuses the credentials for ID .* \(401\), which it accepted before: the ID was removed there, or its secret changed/)
  await until(() => text.includes('GET /one '), 5000, 'the first answer')
  await sleep(600)
  mobile.write('GET /two HTTP/1.1\r\nHost: x\r\n\r\n')
  await until(() => text.includes('GET /two '), 5000, 'the second answer, past closeGrace')
  t.notOk(closed, 'the agent waits for the relayed connection')
  t.equal(fake.connects.length, 2, 'and parks nothing more')
  // close() from here gives it closeGrace, as at any other time.
  const asked = Date.now()
  await agent.close()
  await closing
  t.ok(Date.now() - asked >= 150, `cut after closeGrace (${Date.now() - asked} ms)`)
  await until(() => mobile.closed || mobile.readableEnded, 2000, 'the relayed connection to be cut')
})

t.test('503 and 429: Retry-After is honoured even above the backoff cap', async (t) => {
  for (const status of [503, 429]) {
    const { fake, to } = await setup(t, (n) => n === 0 ? { kind: 'refuse', status, headers: { 'Retry-After': '1' } } : { kind: 'park' })
    const agent = new RendezvousAgent({ url: fake.url, id: TEST_ID, secret: TEST_SECRET, to, ca: tlsCert, pool: 1, backoffMax: 50 })
    const errors: Error[] = []
    agent.on('error', (err) => errors.push(err))
    await agent.start()
    t.teardown(() => agent.close())
    const gap = fake.connects[1]!.at - fake.connects[0]!.at
    t.ok(gap >= 950, `${status}: second attempt ${gap} ms later`)
    t.match(errors[0], { code: 'RENDEZVOUS_REFUSED', status, retryAfter: 1000 })
    t.match(agent.stats, { failures: 1, parked: 1 })
  }
})

t.test('5xx and silence are retried with backoff until a 200', async (t) => {
  const answers: Answer[] = [
    { kind: 'refuse', status: 500, reason: 'Internal Server Error' },
    { kind: 'hang' },
    { kind: 'refuse', status: 502, reason: 'Bad Gateway' }
  ]
  const { fake, to } = await setup(t, (n) => answers[n] ?? { kind: 'park' })
  const agent = new RendezvousAgent({ url: fake.url, id: TEST_ID, secret: TEST_SECRET, to, ca: tlsCert, pool: 1, backoffMax: 100, connectTimeout: 300 })
  const phases: string[] = []
  agent.on('error', (err, phase) => phases.push(`${phase}:${(err as { code?: string }).code}`))
  await agent.start()
  t.teardown(() => agent.close())
  t.same(phases, ['connect:RENDEZVOUS_REFUSED', 'connect:RENDEZVOUS_HANDSHAKE_TIMEOUT', 'connect:RENDEZVOUS_REFUSED'])
  t.match(agent.stats, { attempts: 4, failures: 3, parked: 1 })
})

t.test('a parked connection that dies is replaced', async (t) => {
  const { fake, to } = await setup(t)
  const agent = new RendezvousAgent({ url: fake.url, id: TEST_ID, secret: TEST_SECRET, to, ca: tlsCert, pool: 3, backoffMax: 200 })
  await agent.start()
  t.teardown(() => agent.close())
  await fake.waitParked(3)
  fake.parked[1]!.destroy()
  await until(() => fake.parked.length === 3 && agent.stats.parked === 3, 3000, 'the pool to refill')
  t.match(agent.stats, { dropped: 1, attempts: 4 })
})

t.test('without any error listener, transient failures do not crash', async (t) => {
  const { fake, to } = await setup(t, (n) => n === 0 ? { kind: 'refuse', status: 503 } : { kind: 'park' })
  const agent = new RendezvousAgent({ url: fake.url, id: TEST_ID, secret: TEST_SECRET, to, ca: tlsCert, pool: 1, backoffMax: 50 })
  await agent.start()
  t.teardown(() => agent.close())
  t.equal(agent.stats.failures, 1)
})
