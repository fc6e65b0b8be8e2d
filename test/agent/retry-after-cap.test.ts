import t from 'tap'
import { RendezvousAgent } from '../../lib/agent/agent'
import { honouredRetryAfter } from '../../lib/agent/backoff'
import { tlsCert } from '../helpers/tls'
import { until } from '../helpers/until'
import { FakeRendezvous, TEST_ID, TEST_SECRET } from './fake-rendezvous'

/*
 * A server's Retry-After is honoured, but no further than the larger of
 * backoffMax and a minute: whatever once answered at the relay's address
 * (a proxy in maintenance, a relay just before its restart) must not keep
 * the agent away for up to an hour from a relay that is back.
 */

t.test('honouredRetryAfter: all of a short wait, at most max(backoffMax, 60 s) of a long one', async (t) => {
  t.equal(honouredRetryAfter(undefined, 30_000), undefined)
  t.equal(honouredRetryAfter(5_000, 2_000), 5_000, 'the relay\'s own 5 s, above a small backoffMax')
  t.equal(honouredRetryAfter(60_000, 30_000), 60_000, 'the relay\'s default cool-off, whole')
  t.equal(honouredRetryAfter(120_000, 2_000), 60_000)
  t.equal(honouredRetryAfter(3_600_000, 30_000), 60_000)
  t.equal(honouredRetryAfter(3_600_000, 300_000), 300_000, 'a larger backoffMax lets a longer wait through')
})

for (const [status, backoffMax, retryAfter, expected] of [
  [503, 2_000, '120', 60_000],
  [429, 50, '3600', 60_000],
  [503, 120_000, '3600', 120_000],
  [503, 50, '7', 7_000]
] as const) {
  t.test(`${status} with Retry-After: ${retryAfter} and backoffMax ${backoffMax}: the agent waits ${expected / 1000} s`, async (t) => {
    const fake = await new FakeRendezvous({ id: TEST_ID, secret: TEST_SECRET, answer: () => ({ kind: 'refuse', status, headers: { 'Retry-After': retryAfter } }) }).listen()
    t.teardown(() => fake.close())
    const agent = new RendezvousAgent({ url: fake.url, id: TEST_ID, secret: TEST_SECRET, to: 'http://127.0.0.1:9', ca: tlsCert, pool: 1, backoffMax })
    const delays: number[] = []
    const errors: Array<{ retryAfter?: number }> = []
    agent.on('backoff', ({ delay }) => delays.push(delay))
    agent.on('error', (err) => errors.push(err as { retryAfter?: number }))
    agent.start().catch(() => {})
    t.teardown(() => agent.destroy())
    await until(() => delays.length === 1, 5000, 'the first wait')
    t.equal(delays[0], expected)
    t.equal(errors[0]?.retryAfter, Number(retryAfter) * 1000, 'the error still carries what the server asked')
    t.equal(fake.connects.length, 1)
  })
}
