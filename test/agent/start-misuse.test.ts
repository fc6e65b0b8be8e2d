import t from 'tap'
import { once } from 'node:events'
import { RendezvousAgent } from '../../lib/agent/agent'
import { FakeRendezvous, TEST_ID, TEST_SECRET } from './fake-rendezvous'
import type { TapTest } from './helpers'

/*
 * start() called again: while the agent runs it is the same call (the same
 * promise, nothing dialled twice); once the agent closed, or is closing,
 * it rejects with a stable code, FST_RENDEZVOUS_AGENT_CLOSED, whether or
 * not start() was called before.
 */

const CLOSED = {
  code: 'FST_RENDEZVOUS_AGENT_CLOSED',
  message: 'RendezvousAgent: start() after the agent closed (close(), destroy() or fatal came first): make a new RendezvousAgent'
}

async function fake (t: TapTest, refuse = false): Promise<FakeRendezvous> {
  const f = await new FakeRendezvous({ id: TEST_ID, secret: TEST_SECRET, plain: true, answer: refuse ? () => ({ kind: 'refuse', status: 401, reason: 'Unauthorized' }) : undefined }).listen()
  t.teardown(() => f.close())
  return f
}

function agentAt (t: TapTest, f: FakeRendezvous): RendezvousAgent {
  const agent = new RendezvousAgent({ url: f.url, id: TEST_ID, secret: TEST_SECRET, to: 'http://127.0.0.1:9', pool: 2 })
  t.teardown(() => agent.destroy())
  return agent
}

t.test('a second start() while the first is pending, and one after it resolved: the same promise, and one pool', async (t) => {
  const f = await fake(t)
  const agent = agentAt(t, f)
  const first = agent.start()
  const second = agent.start()
  t.equal(second, first, 'the same promise while pending')
  await first
  t.equal(agent.start(), first, 'the same promise once it resolved')
  await f.waitParked(2)
  await new Promise(resolve => setTimeout(resolve, 200))
  t.equal(f.goodConnects, 2, 'the pool of 2, dialled once')
})

t.test('start() after close(), on an agent never started: rejects with the closed code', async (t) => {
  const agent = agentAt(t, await fake(t))
  await agent.close()
  await t.rejects(agent.start(), CLOSED)
  t.equal(agent.stats.attempts, 0, 'nothing dialled')
})

t.test('start() while close() is under way, and after destroy(): rejects with the closed code', async (t) => {
  const f = await fake(t)
  const agent = agentAt(t, f)
  await agent.start()
  const closing = agent.close()
  await t.rejects(agent.start(), CLOSED, 'while closing')
  await closing
  await t.rejects(agent.start(), CLOSED, 'once closed')
  const other = agentAt(t, f)
  await other.destroy()
  await t.rejects(other.start(), CLOSED, 'after destroy()')
})

t.test('start() after fatal: rejects with the closed code, not the refusal again', async (t) => {
  const agent = agentAt(t, await fake(t, true))
  agent.on('fatal', () => {})
  const closed = once(agent, 'close')
  await t.rejects(agent.start(), { code: 'RENDEZVOUS_CREDENTIALS_REFUSED' })
  await t.rejects(agent.start(), CLOSED)
  await closed
  await t.rejects(agent.start(), CLOSED, 'once closed too')
  t.equal(agent.stats.attempts, 1, 'nothing dialled again')
})
