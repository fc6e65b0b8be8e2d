import t from 'tap'
import { once } from 'node:events'
import net from 'node:net'
import { RendezvousAgent, type RendezvousAgentOptions } from '../../lib/agent/agent'
import type { RelayedInfo } from '../../lib/agent/events'
import { restoreEnvAfter } from '../helpers/fixtures'
import { FakeRendezvous, TEST_ID, TEST_SECRET } from './fake-rendezvous'
import { type TapTest, readAll } from './helpers'

/*
 * The agent's own 502, 503 and 504 answer a HEAD with the head alone: a
 * server must not send content in answer to HEAD (RFC 9110 §9.3.2), and a
 * client that follows it takes the body for the start of something else.
 * A GET still gets the short body. On both of the agent's data paths.
 */

const HEAD = 'HEAD /x HTTP/1.1\r\nHost: x\r\n\r\n'
const GET = 'GET /x HTTP/1.1\r\nHost: x\r\n\r\n'

function ownAnswer (status: string, body: string, headOnly: boolean): string {
  return `HTTP/1.1 ${status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${headOnly ? '' : body}`
}

async function listening (server: net.Server, t: TapTest): Promise<number> {
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  return (server.address() as net.AddressInfo).port
}

async function agentFor (t: TapTest, to: string, more: Partial<RendezvousAgentOptions> = {}): Promise<{ fake: FakeRendezvous, agent: RendezvousAgent }> {
  const fake = await new FakeRendezvous({ id: TEST_ID, secret: TEST_SECRET, plain: true }).listen()
  t.teardown(() => fake.close())
  const agent = new RendezvousAgent({ url: fake.url, id: TEST_ID, secret: TEST_SECRET, to, pool: 1, ...more })
  agent.on('error', () => {})
  t.teardown(() => agent.close())
  await agent.start()
  await fake.waitParked(1)
  return { fake, agent }
}

async function exchange (fake: FakeRendezvous, agent: RendezvousAgent, request: string, during?: () => void): Promise<{ answer: string, info: RelayedInfo }> {
  const relayed = new Promise<RelayedInfo>(resolve => agent.once('relayed', resolve))
  const socket = fake.take(request)
  during?.()
  const answer = (await readAll(socket)).toString('latin1')
  return { answer, info: await relayed }
}

for (const js of [false, true]) {
  t.test(js ? 'RENDEZVOUS_SPLICE=js' : 'the default data path', async t => {
    if (js) {
      restoreEnvAfter(t, 'RENDEZVOUS_SPLICE')
      process.env.RENDEZVOUS_SPLICE = 'js'
    }
    const BAD_GATEWAY_BODY = 'The hidden server\'s local service cannot be reached.\n'

    for (const [request, headOnly] of [[HEAD, true], [GET, false]] as const) {
      const method = request.slice(0, 4).trim()
      t.test(`${method}, a backend that refuses the connection: 502`, async t => {
        const closed = net.createServer()
        const port = await listening(closed, t)
        closed.close()
        const { fake, agent } = await agentFor(t, `http://127.0.0.1:${port}`)
        const { answer, info } = await exchange(fake, agent, request)
        t.equal(answer, ownAnswer('502 Bad Gateway', BAD_GATEWAY_BODY, headOnly))
        t.equal(info.answered, 502)
      })

      t.test(`${method}, a backend that resets after reading the request: 502`, async t => {
        const port = await listening(net.createServer(s => { s.on('error', () => {}); s.once('data', () => s.resetAndDestroy()) }), t)
        const { fake, agent } = await agentFor(t, `http://127.0.0.1:${port}`)
        const { answer } = await exchange(fake, agent, request)
        t.equal(answer, ownAnswer('502 Bad Gateway', BAD_GATEWAY_BODY, headOnly))
      })

      t.test(`${method}, a backend that never finishes its TLS handshake: 504`, async t => {
        const port = await listening(net.createServer(s => { s.on('error', () => {}) }), t)
        const { fake, agent } = await agentFor(t, `https://127.0.0.1:${port}`, { toConnectTimeout: 200, toInsecure: true })
        const { answer, info } = await exchange(fake, agent, request)
        t.equal(answer, ownAnswer('504 Gateway Timeout', 'The hidden server\'s local service did not accept the connection in time.\n', headOnly))
        t.equal(info.answered, 504)
      })

      t.test(`${method}, an agent that closes while the backend holds the request: 503`, async t => {
        const port = await listening(net.createServer(s => { s.on('error', () => {}); s.resume() }), t)
        const { fake, agent } = await agentFor(t, `http://127.0.0.1:${port}`, { closeGrace: 100 })
        const { answer, info } = await exchange(fake, agent, request, () => { setTimeout(() => { agent.close().catch(() => {}) }, 100) })
        t.equal(answer, ownAnswer('503 Service Unavailable', 'The hidden server is shutting down.\n', headOnly))
        t.equal(info.answered, 503)
      })
    }
  })
}
