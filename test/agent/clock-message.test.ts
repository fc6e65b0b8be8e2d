import t from 'tap'
import { RendezvousAgent, type RendezvousAuthError } from '../../lib/agent/agent'
import { FakeRendezvous, TEST_ID, TEST_SECRET } from './fake-rendezvous'
import type { TapTest } from './helpers'

/*
 * A 401 from a server whose Date is off from this clock: the agent cannot
 * know the server's --token-skew, so any offset past a few seconds is named,
 * with the clock as a possible cause beside the credentials, and never a
 * token lifetime that the offset itself contradicts.
 */

async function refusalWith (t: TapTest, date: string | undefined): Promise<string> {
  const headers = date === undefined ? undefined : { Date: date }
  const fake = await new FakeRendezvous({ id: TEST_ID, secret: TEST_SECRET, plain: true, answer: () => ({ kind: 'refuse', status: 401, reason: 'Unauthorized', headers }) }).listen()
  t.teardown(() => fake.close())
  const agent = new RendezvousAgent({ url: fake.url, id: TEST_ID, secret: TEST_SECRET, to: 'http://127.0.0.1:9', pool: 1 })
  agent.on('error', () => {})
  t.teardown(() => agent.destroy())
  const err = await agent.start().then(() => { throw new Error('parked') }, (e: RendezvousAuthError) => e)
  t.equal(err.code, 'RENDEZVOUS_CREDENTIALS_REFUSED')
  t.equal(fake.goodConnects, 1, 'the token was good: only the server\'s clock says no')
  return err.message
}

const SKEW = 'the server refuses tokens older or newer than its token skew \\(120 s unless its operator changed --token-skew\\), so the clock may be the cause; check both clocks \\(NTP\\), and the ID and the secret'

t.test('a server 30 s behind: the offset is named, with the skew the agent cannot know, and the clocks to check', async (t) => {
  const message = await refusalWith(t, new Date(Date.now() - 30_000).toUTCString())
  t.match(message, new RegExp(`^the rendezvous refused the credentials for ID ${TEST_ID} \\(401\\): this clock is (29|30|31) s ahead of the server's, and ${SKEW}$`))
  t.notMatch(message, /only live/)
})

t.test('a server 30 s ahead: this clock is behind', async (t) => {
  const message = await refusalWith(t, new Date(Date.now() + 30_000).toUTCString())
  t.match(message, new RegExp(`: this clock is (29|30|31) s behind the server's, and ${SKEW}$`))
})

t.test('a server 1 s off: only the ID and the secret', async (t) => {
  const message = await refusalWith(t, new Date(Date.now() - 1000).toUTCString())
  t.equal(message, `the rendezvous refused the credentials for ID ${TEST_ID} (401): check the ID and the secret`)
})

t.test('no Date: the clock is named as a possible cause, without a number or a lifetime of its own', async (t) => {
  const message = await refusalWith(t, undefined)
  t.match(message, /^the rendezvous refused the credentials for ID \S+ \(401\): check the ID and the secret, and this machine's clock \(the server refuses tokens older or newer than its token skew \(120 s unless its operator changed --token-skew\)\)$/)
})
