import t from 'tap'
import { once } from 'node:events'
import net from 'node:net'
import tls from 'node:tls'
import { RendezvousAgent } from '../../lib/agent/agent'
import type { RelayedInfo } from '../../lib/agent/events'
import { defaultSplicePath, splicerFor } from '../../lib/relay/native-addon'
import { restoreEnvAfter } from '../helpers/fixtures'
import { tlsCert, tlsKey } from '../helpers/tls'
import { FakeRendezvous, TEST_ID, TEST_SECRET } from './fake-rendezvous'
import { type TapTest, readAll, sleep } from './helpers'

/*
 * A backend that accepts the connection and then closes or resets it
 * without sending a byte: the mobile client must get a real answer, 502,
 * as for a backend that refuses the connection, and not an empty close.
 * On every data path the agent has: JavaScript (a TLS rendezvous, or
 * RENDEZVOUS_SPLICE=js) and native (plain on both sides, the addon loaded).
 */

const GET = 'GET /x?secret=1 HTTP/1.1\r\nHost: x\r\n\r\n'
const BAD_GATEWAY = /^HTTP\/1\.1 502 Bad Gateway\r\nContent-Type: text\/plain; charset=utf-8\r\nContent-Length: \d+\r\nConnection: close\r\n\r\nThe hidden server's local service cannot be reached\.\n$/
const OK = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'

type Backend = (s: net.Socket) => void

const atOnce = (fn: (s: net.Socket) => void): Backend => fn
// Once the request is in: a backend that read it and then gave up on it.
const afterRequest = (fn: (s: net.Socket) => void): Backend => (s) => { s.once('data', () => fn(s)) }

const DROPS: Array<[string, Backend, string]> = [
  ['closes (FIN) at once', atOnce(s => s.end()), 'closed'],
  ['closes (FIN) after reading the request', afterRequest(s => s.end()), 'closed'],
  ['resets (RST) after reading the request', afterRequest(s => s.resetAndDestroy()), 'reset']
]

interface Path { name: string, plain: boolean, js: boolean, tlsBackend?: boolean }

const native = splicerFor(defaultSplicePath()) !== undefined
const PATHS: Path[] = [
  { name: 'TLS rendezvous, JavaScript path', plain: false, js: false },
  { name: 'plain rendezvous, RENDEZVOUS_SPLICE=js', plain: true, js: true },
  { name: `plain rendezvous, ${native ? 'native' : 'JavaScript (no addon)'} path`, plain: true, js: false },
  { name: 'plain rendezvous, https backend', plain: true, js: false, tlsBackend: true }
]

async function relayTo (t: TapTest, path: Path, backend: Backend): Promise<{ fake: FakeRendezvous, agent: RendezvousAgent }> {
  if (path.js) {
    restoreEnvAfter(t, 'RENDEZVOUS_SPLICE')
    process.env.RENDEZVOUS_SPLICE = 'js'
  }
  const onSocket = (s: net.Socket): void => { s.on('error', () => {}); backend(s) }
  const server = path.tlsBackend === true ? tls.createServer({ key: tlsKey, cert: tlsCert }, onSocket) : net.createServer(onSocket)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  const port = (server.address() as net.AddressInfo).port
  const fake = await new FakeRendezvous({ id: TEST_ID, secret: TEST_SECRET, plain: path.plain }).listen()
  t.teardown(() => fake.close())
  const to = `${path.tlsBackend === true ? 'https' : 'http'}://127.0.0.1:${port}`
  const agent = new RendezvousAgent({ url: fake.url, id: TEST_ID, secret: TEST_SECRET, to, toCa: path.tlsBackend === true ? tlsCert : undefined, ca: path.plain ? undefined : tlsCert, pool: 1 })
  agent.on('error', () => {})
  t.teardown(() => agent.close())
  await agent.start()
  await fake.waitParked(1)
  return { fake, agent }
}

// Not events.once(): the agent's 'error' events (listened to, for the relay phase) would reject it.
function nextRelayed (agent: RendezvousAgent): Promise<RelayedInfo> {
  return new Promise(resolve => agent.once('relayed', resolve))
}

async function exchange (fake: FakeRendezvous, agent: RendezvousAgent, request = GET, halfClose = false): Promise<{ answer: string, info: RelayedInfo }> {
  const relayed = nextRelayed(agent)
  const socket = fake.take(request)
  if (halfClose) socket.end()
  const answer = (await readAll(socket)).toString('latin1')
  const info = await relayed
  return { answer, info }
}

for (const path of PATHS) {
  t.test(path.name, async (t) => {
    // Node cannot reset a TLS socket (resetAndDestroy is for plain TCP): an https backend is tested for its FIN, with close_notify.
    for (const [what, backend, verb] of DROPS.filter(([, , verb]) => path.tlsBackend !== true || verb === 'closed')) {
      t.test(`a backend that ${what}: the mobile client gets 502, and the agent says why`, async (t) => {
        const { fake, agent } = await relayTo(t, path, backend)
        const { answer, info } = await exchange(fake, agent)
        t.match(answer, BAD_GATEWAY)
        t.equal(info.answered, 502, 'the relayed event says the agent answered 502')
        t.equal(info.request, 'GET /x')
        t.equal((info.error as { code?: string }).code, 'FST_RENDEZVOUS_AGENT_LOCAL_CLOSED')
        t.match(info.error?.message, new RegExp(`^the local service 127\\.0\\.0\\.1:\\d+ ${verb} the connection before it answered$`))
      })
    }

    t.test('a backend that resets (RST) as it accepts: 502 too, whichever of the connect and the reset the agent sees first', { skip: path.tlsBackend === true && 'no RST from a TLS socket' }, async (t) => {
      const { fake, agent } = await relayTo(t, path, atOnce(s => s.resetAndDestroy()))
      for (let i = 0; i < 3; i++) {
        await fake.waitParked(1)
        const { answer, info } = await exchange(fake, agent)
        t.match(answer, BAD_GATEWAY, `exchange ${i}`)
        t.equal(info.answered, 502)
      }
    })

    t.test('a client that half-closes after its request, and a backend that reads to the end and closes without a byte: 502 still reaches the client', async (t) => {
      const { fake, agent } = await relayTo(t, path, (s) => { s.resume(); s.on('end', () => s.end()) })
      const { answer, info } = await exchange(fake, agent, 'GET /x HTTP/1.0\r\n\r\n', true)
      t.match(answer, BAD_GATEWAY)
      t.equal(info.answered, 502)
    })

    t.test('a backend that answers and then closes is a normal end: its bytes, exactly, and no answer of the agent\'s', async (t) => {
      const { fake, agent } = await relayTo(t, path, afterRequest(s => s.end(OK)))
      const { answer, info } = await exchange(fake, agent)
      t.equal(answer, OK)
      t.equal(info.answered, undefined)
      t.equal(info.error, undefined)
      t.equal((info as { path?: string }).path, path.plain && !path.js && path.tlsBackend !== true && native ? 'native' : 'js', 'the data path taken')
    })

    t.test('a backend that answers and then resets: its bytes, and no 502 after them', { skip: path.tlsBackend === true && 'no RST from a TLS socket' }, async (t) => {
      const { fake, agent } = await relayTo(t, path, afterRequest(s => { s.write(OK); setTimeout(() => s.resetAndDestroy(), 100) }))
      const { answer, info } = await exchange(fake, agent)
      t.equal(answer, OK)
      t.equal(info.answered, undefined)
    })

    t.test('a backend that answers only after a pause: the request body sent meanwhile reaches it whole', async (t) => {
      const body = Buffer.alloc(256 * 1024, 'b')
      const head = `POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`
      let got = 0
      const { fake, agent } = await relayTo(t, path, (s) => {
        s.on('data', (c: Buffer) => {
          got += c.length
          if (got === head.length + body.length) s.end(OK)
        })
      })
      const relayed = nextRelayed(agent)
      const socket = fake.take(head)
      await sleep(50)
      socket.write(body)
      t.equal((await readAll(socket)).toString('latin1'), OK)
      t.equal((await relayed).answered, undefined)
    })
  })
}
