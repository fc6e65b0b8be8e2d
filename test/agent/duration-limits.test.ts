import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { RendezvousAgent, type RendezvousAgentOptions } from '../../lib/agent/agent'
import { MAX_TIMER_MS } from '../../lib/timer-limit'
import { tlsCert } from '../helpers/tls'
import { FakeRendezvous, TEST_ID, TEST_SECRET } from './fake-rendezvous'

/*
 * Every duration of the agent becomes a timer, and Node fires a timer set
 * past 2^31 - 1 ms after 1 ms: a maxAge of 35 days re-parked thousands of
 * times a second, a toConnectTimeout of 115 days answered 504 at once.
 */
const base = { url: 'https://127.0.0.1:1', id: TEST_ID, secret: TEST_SECRET, to: 'http://127.0.0.1:2' }
const DURATIONS = ['maxAge', 'toConnectTimeout', 'connectTimeout', 'backoffBase', 'backoffMax', 'probeInterval', 'closeGrace'] as const

t.test('a duration past the longest timer Node keeps is refused by name, in the plugin\'s words', async t => {
  for (const option of DURATIONS) {
    for (const value of [MAX_TIMER_MS + 1, 3e9, Infinity]) {
      t.throws(() => new RendezvousAgent({ ...base, [option]: value }), {
        code: 'FST_RENDEZVOUS_AGENT_BAD_OPTION',
        option,
        problem: `must be at most 2147483647 ms (about 24.8 days, the longest timer Node keeps), got ${String(value)}`,
        message: `RendezvousAgent: ${option} must be at most 2147483647 ms (about 24.8 days, the longest timer Node keeps), got ${String(value)}`
      }, `${option}: ${value}`)
    }
    t.doesNotThrow(() => new RendezvousAgent({ ...base, [option]: MAX_TIMER_MS }), `${option}: ${MAX_TIMER_MS}, the limit itself`)
  }
})

t.test('maxAge is 0 (never) or a second at least: a few ms re-parked hundreds of times a second', async t => {
  for (const maxAge of [1, 300, 999, 0.5, -1]) {
    t.throws(() => new RendezvousAgent({ ...base, maxAge }), {
      code: 'FST_RENDEZVOUS_AGENT_BAD_OPTION',
      option: 'maxAge',
      message: 'RendezvousAgent: maxAge must be 0 (never) or an integer of at least 1000'
    }, `maxAge ${maxAge}`)
  }
  for (const maxAge of [0, 1000, 300_000]) t.doesNotThrow(() => new RendezvousAgent({ ...base, maxAge }), `maxAge ${maxAge}`)
})

t.test('keepAlive is what the kernel takes, 1 s to 32767 s: outside it the system\'s two hours were used unsaid', async t => {
  for (const keepAlive of [999, 0, 32_767_001, MAX_TIMER_MS, 1500.5]) {
    t.throws(() => new RendezvousAgent({ ...base, keepAlive }), {
      code: 'FST_RENDEZVOUS_AGENT_BAD_OPTION',
      option: 'keepAlive',
      message: `RendezvousAgent: keepAlive must be an integer from 1000 to 32767000 ms (1 s to 32767 s, what the kernel takes; outside it the system's own delay is used unsaid), got ${keepAlive}`
    }, `keepAlive ${keepAlive}`)
  }
  for (const keepAlive of [1000, 30_000, 32_767_000]) t.doesNotThrow(() => new RendezvousAgent({ ...base, keepAlive }), `keepAlive ${keepAlive}`)
})

t.test('at the limit, a parked connection stays parked: the timer did not fire at once', async t => {
  const fake = await new FakeRendezvous({ id: TEST_ID, secret: TEST_SECRET }).listen()
  t.teardown(() => fake.close())
  const options: RendezvousAgentOptions = { url: fake.url, id: TEST_ID, secret: TEST_SECRET, to: 'http://127.0.0.1:9', ca: tlsCert, pool: 2, maxAge: MAX_TIMER_MS }
  const agent = new RendezvousAgent(options)
  t.teardown(() => agent.close())
  await agent.start()
  await fake.waitParked(2)
  await sleep(1000)
  t.equal(fake.connects.length, 2, 'two CONNECTs in a second, one per place of the pool')
  t.equal(agent.stats.replaced, 0)
})
