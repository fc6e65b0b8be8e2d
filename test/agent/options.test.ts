import t from 'tap'
import { RendezvousAgent } from '../../lib/agent/agent'
import { restoreEnvAfter } from '../helpers/fixtures'
import { TEST_ID, TEST_SECRET } from './fake-rendezvous'

const base = { url: 'https://127.0.0.1:1', id: TEST_ID, secret: TEST_SECRET, to: 'http://127.0.0.1:2' }

t.test('a RENDEZVOUS_SPLICE that names no data path fails the construction with the agent\'s own code', async (t) => {
  restoreEnvAfter(t, 'RENDEZVOUS_SPLICE')
  process.env.RENDEZVOUS_SPLICE = 'JS'
  // Not the plugin's FST_RENDEZVOUS_BAD_OPTION: an app that embeds both tells them apart by code.
  t.throws(() => new RendezvousAgent(base), {
    code: 'FST_RENDEZVOUS_AGENT_BAD_OPTION',
    message: 'RendezvousAgent: RENDEZVOUS_SPLICE must be auto, native or js, got "JS"'
  })
  for (const good of ['', 'auto', 'js']) {
    process.env.RENDEZVOUS_SPLICE = good
    t.doesNotThrow(() => new RendezvousAgent(base), `RENDEZVOUS_SPLICE=${JSON.stringify(good)}`)
  }
})

t.test('a URL with port 0 is refused: nothing listens there', async (t) => {
  t.throws(() => new RendezvousAgent({ ...base, url: 'https://127.0.0.1:0' }), { code: 'FST_RENDEZVOUS_AGENT_BAD_OPTION', option: 'url', message: 'RendezvousAgent: url has port 0, which no server listens on: https://127.0.0.1:0' })
  t.throws(() => new RendezvousAgent({ ...base, to: 'http://[::1]:0' }), { code: 'FST_RENDEZVOUS_AGENT_BAD_OPTION', option: 'to' })
  t.doesNotThrow(() => new RendezvousAgent({ ...base, url: 'https://relay.example', to: 'http://127.0.0.1:80' }), 'a default port is fine')
})
