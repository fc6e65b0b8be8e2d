import t from 'tap'
import { once } from 'node:events'
import net from 'node:net'
import { RendezvousAgent, type ErrorPhase } from '../../lib/agent/agent'
import type { RelayedInfo } from '../../lib/agent/events'
import { defaultSplicePath, splicerFor } from '../../lib/relay/native-addon'
import { restoreEnvAfter } from '../helpers/fixtures'
import { FakeRendezvous, TEST_ID, TEST_SECRET } from './fake-rendezvous'
import { type TapTest, readAll, readUntil } from './helpers'

/*
 * A relayed connection that breaks after the backend's first bytes (a
 * reset on either side) is reported the same way on both data paths: one
 * `error` in phase `relay`, and a `relayed` that carries that same error
 * and names the path the bytes took. The native path used to put the
 * error in `relayed` alone.
 */

const GET = 'GET /part?token=1 HTTP/1.1\r\nHost: x\r\n\r\n'
const HEAD = 'HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n'

const native = splicerFor(defaultSplicePath()) !== undefined
const PATHS: Array<{ name: string, js: boolean, path: 'native' | 'js' }> = [
  { name: 'RENDEZVOUS_SPLICE=js', js: true, path: 'js' },
  { name: native ? 'the native path' : 'the default path (no addon: JavaScript)', js: false, path: native ? 'native' : 'js' }
]

interface Seen { errors: Array<{ err: Error, phase: ErrorPhase }>, relayed: Promise<RelayedInfo> }

async function relayTo (t: TapTest, js: boolean, backend: (s: net.Socket) => void): Promise<{ fake: FakeRendezvous, seen: Seen }> {
  if (js) {
    restoreEnvAfter(t, 'RENDEZVOUS_SPLICE')
    process.env.RENDEZVOUS_SPLICE = 'js'
  }
  const server = net.createServer((s) => { s.on('error', () => {}); backend(s) })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  const fake = await new FakeRendezvous({ id: TEST_ID, secret: TEST_SECRET, plain: true }).listen()
  t.teardown(() => fake.close())
  const agent = new RendezvousAgent({ url: fake.url, id: TEST_ID, secret: TEST_SECRET, to: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`, pool: 1 })
  const errors: Seen['errors'] = []
  agent.on('error', (err, phase) => errors.push({ err, phase }))
  t.teardown(() => agent.destroy())
  await agent.start()
  await fake.waitParked(1)
  return { fake, seen: { errors, relayed: new Promise(resolve => agent.once('relayed', resolve)) } }
}

function checkReported (t: TapTest, seen: Seen, info: RelayedInfo, path: 'native' | 'js'): void {
  t.equal(seen.errors.length, 1, 'one error event')
  t.equal(seen.errors[0]?.phase, 'relay', 'in phase relay')
  t.equal((seen.errors[0]?.err as NodeJS.ErrnoException | undefined)?.code, 'ECONNRESET')
  t.equal(info.error, seen.errors[0]?.err, 'relayed carries the error the error event gave')
  t.equal(info.answered, undefined, 'no answer of the agent\'s after the backend\'s bytes')
  t.equal(info.request, 'GET /part')
  t.equal(info.path, path, 'the data path taken')
}

for (const { name, js, path } of PATHS) {
  t.test(name, async (t) => {
    t.test('a backend that resets after part of its answer: the error event, and relayed with it', async (t) => {
      const { fake, seen } = await relayTo(t, js, (s) => s.once('data', () => {
        s.write(HEAD + 'part')
        // Later than the first chunk, so that the rest of the connection is on the path under test.
        setTimeout(() => s.resetAndDestroy(), 100)
      }))
      const answer = (await readAll(fake.take(GET))).toString('latin1')
      t.equal(answer, HEAD + 'part', 'the client got the bytes sent before the reset, and nothing of the agent\'s')
      checkReported(t, seen, await seen.relayed, path)
    })

    t.test('a client that resets mid-answer: the error event, and relayed with it', async (t) => {
      let timer: NodeJS.Timeout | undefined
      t.teardown(() => clearInterval(timer))
      const { fake, seen } = await relayTo(t, js, (s) => s.once('data', () => {
        s.write(HEAD + 'part')
        // Keeps sending, so that the reset is met by a write as well as a read.
        timer = setInterval(() => { if (s.writable) s.write('more') }, 10)
        s.once('close', () => clearInterval(timer))
      }))
      const client = fake.take(GET)
      await readUntil(client, 'part')
      await new Promise(resolve => setTimeout(resolve, 100))
      client.resetAndDestroy()
      checkReported(t, seen, await seen.relayed, path)
    })
  })
}
