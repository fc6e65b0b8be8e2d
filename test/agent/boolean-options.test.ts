import t from 'tap'
import { AgentOptionError, RendezvousAgent, type RendezvousAgentOptions } from '../../lib/agent/agent'
import { TEST_ID, TEST_SECRET } from './fake-rendezvous'

/*
 * insecure and toInsecure take true or false, as every other option takes
 * its own type: 'yes' or 1 used to be read as false without a word, which
 * left verification on for a user who meant it off (or hid a typo).
 */

function thrown (fn: () => unknown): unknown {
  try {
    fn()
  } catch (err) {
    return err
  }
}

const base = { url: 'https://127.0.0.1:1', id: TEST_ID, secret: TEST_SECRET, to: 'https://127.0.0.1:2' }

for (const option of ['insecure', 'toInsecure'] as const) {
  t.test(`${option}: anything but a boolean is refused, naming the option`, async (t) => {
    for (const [value, shown] of [['yes', '"yes"'], [1, '1'], [0, '0'], ['false', '"false"'], [null, 'null']] as const) {
      const opts = { ...base, [option]: value } as unknown as RendezvousAgentOptions
      t.ok(thrown(() => new RendezvousAgent(opts)) instanceof AgentOptionError, 'an AgentOptionError')
      t.throws(() => new RendezvousAgent(opts), {
        code: 'FST_RENDEZVOUS_AGENT_BAD_OPTION',
        option,
        problem: `must be true or false, got ${shown}`,
        message: `RendezvousAgent: ${option} must be true or false, got ${shown}`
      }, `${option}: ${shown}`)
    }
  })

  t.test(`${option}: true, false and absent are taken`, async (t) => {
    for (const value of [true, false, undefined]) {
      t.doesNotThrow(() => new RendezvousAgent({ ...base, [option]: value }), `${option}: ${String(value)}`)
    }
  })
}

t.test('a non-boolean toInsecure is refused for what it is, before what it applies to', async (t) => {
  // An http:// `to` takes no toInsecure at all; 'yes' is still named as not a boolean, not let through as false.
  t.throws(() => new RendezvousAgent({ ...base, to: 'http://127.0.0.1:2', toInsecure: 'yes' as unknown as boolean }), { code: 'FST_RENDEZVOUS_AGENT_BAD_OPTION', option: 'toInsecure', problem: 'must be true or false, got "yes"' })
  t.throws(() => new RendezvousAgent({ ...base, insecure: 1 as unknown as boolean, ca: 'x' }), { code: 'FST_RENDEZVOUS_AGENT_BAD_OPTION', option: 'insecure', problem: 'must be true or false, got 1' })
})
