import t from 'tap'
import { once } from 'node:events'
import net from 'node:net'
import { RendezvousAgent } from '../../lib/agent/agent'
import type { TapTest } from './helpers'
import { TEST_ID, TEST_SECRET } from './fake-rendezvous'
import { sleep } from './helpers'

/*
 * A --server that is not a rendezvous: a web server that answers CONNECT
 * like any request, the relay's admin or metrics port. Its answer must not
 * be taken for a parked connection, and what the agent says must point at
 * the address; a refusal's own words (a relay's 429) are part of the line.
 */

interface Seen { connects: string[] }

// Answers every CONNECT with `answer`, and keeps the connection open, as a keep-alive web server does.
async function server (t: TapTest, answer: (head: string) => string): Promise<{ url: string, seen: Seen }> {
  const seen: Seen = { connects: [] }
  const srv = net.createServer((s) => {
    s.on('error', () => {})
    let buf = ''
    s.on('data', (d) => {
      buf += d.toString('latin1')
      const end = buf.indexOf('\r\n\r\n')
      if (end === -1) return
      const head = buf.slice(0, end)
      buf = buf.slice(end + 4)
      seen.connects.push(head.split('\r\n')[0]!)
      s.write(answer(head))
    })
  })
  srv.listen(0, '127.0.0.1')
  await once(srv, 'listening')
  t.teardown(() => { srv.close() })
  const sockets = new Set<net.Socket>()
  srv.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)) })
  t.teardown(() => { for (const s of sockets) s.destroy() })
  return { url: `http://127.0.0.1:${(srv.address() as net.AddressInfo).port}`, seen }
}

// A local service that counts what reaches it.
async function backend (t: TapTest): Promise<{ to: string, requests: Buffer[] }> {
  const requests: Buffer[] = []
  const srv = net.createServer((s) => {
    s.on('error', () => {})
    s.on('data', (d) => requests.push(d))
  })
  srv.listen(0, '127.0.0.1')
  await once(srv, 'listening')
  t.teardown(() => { srv.close() })
  return { to: `http://127.0.0.1:${(srv.address() as net.AddressInfo).port}`, requests }
}

function agentAt (t: TapTest, url: string, to: string): { agent: RendezvousAgent, errors: Array<Error & { code?: string, status?: number }>, events: string[] } {
  const agent = new RendezvousAgent({ url, id: TEST_ID, secret: TEST_SECRET, to, pool: 1, probeInterval: 0 })
  const errors: Array<Error & { code?: string }> = []
  const events: string[] = []
  agent.on('error', (err) => errors.push(err))
  for (const name of ['parked', 'taken', 'backoff'] as const) agent.on(name, () => events.push(name))
  agent.start().catch(() => {})
  t.teardown(() => agent.destroy())
  return { agent, errors, events }
}

const FRAMINGS: Array<[string, string]> = [
  ['Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello'],
  ['Transfer-Encoding', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'],
  ['Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n']
]

for (const [header, answer] of FRAMINGS) {
  t.test(`a 200 to CONNECT with ${header} (${JSON.stringify(answer.slice(17, 40))}) is no parked connection: an error that names the mistake, backoff, nothing forwarded`, async (t) => {
    const { url, seen } = await server(t, () => answer)
    const local = await backend(t)
    const { agent, errors, events } = agentAt(t, url, local.to)
    await sleep(1500)
    t.same(local.requests, [], 'no byte of its answer reached the local service')
    t.notOk(events.includes('parked'), 'never reported parked')
    t.notOk(events.includes('taken'), 'never taken')
    t.ok(events.includes('backoff'), 'backed off')
    t.ok(seen.connects.length >= 1 && seen.connects.length <= 8, `a few CONNECTs in 1.5 s, not a loop (${seen.connects.length})`)
    t.equal(agent.stats.parked, 0)
    t.ok(errors.length >= 1)
    t.match(errors[0], {
      code: 'RENDEZVOUS_NOT_A_RENDEZVOUS',
      status: 200,
      message: new RegExp(`^127\\.0\\.0\\.1:\\d+ answered CONNECT with a body \\(200 with ${header}: \\S+\\): this is not a rendezvous \\(is --server the right address\\?\\)$`)
    })
  })
}

t.test('a plain 200, as a relay sends it, still parks', async (t) => {
  const { url } = await server(t, () => 'HTTP/1.1 200 OK\r\n\r\n')
  const local = await backend(t)
  const { agent } = agentAt(t, url, local.to)
  await new Promise<void>((resolve) => agent.once('parked', () => resolve()))
  t.equal(agent.stats.parked, 1)
})

const NOT_RELAY: Array<[string, string, RegExp]> = [
  ['405 from the relay\'s admin port', 'HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, POST, DELETE\r\nContent-Length: 90\r\nConnection: close\r\n\r\nthe admin listener relays nothing: agents and clients CONNECT to the relay\'s public port\n',
    /^the rendezvous answered 405 Method Not Allowed \(the admin listener relays nothing: agents and clients CONNECT to the relay's public port\); this may not be a rendezvous \(is --server the right address\?\)$/],
  ['501 from a web server', 'HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\nConnection: close\r\n\r\n',
    /^the rendezvous answered 501 Not Implemented; this may not be a rendezvous \(is --server the right address\?\)$/],
  ['204 from a web server', 'HTTP/1.1 204 No Content\r\n\r\n',
    /^the rendezvous answered 204 No Content; a rendezvous answers CONNECT with 200 only, so this may not be a rendezvous \(is --server the right address\?\)$/]
]

for (const [what, answer, message] of NOT_RELAY) {
  t.test(`${what}: the refusal says the address may not be a rendezvous, and is retried`, async (t) => {
    const { url, seen } = await server(t, () => answer)
    const local = await backend(t)
    const { errors, events } = agentAt(t, url, local.to)
    while (errors.length < 2) await sleep(50)
    t.match(errors[0], { code: 'RENDEZVOUS_REFUSED', message })
    t.ok(seen.connects.length >= 2, 'tried again')
    t.ok(events.includes('backoff'))
    t.same(local.requests, [])
  })
}

t.test('a refusal carries the first line of its body, without controls, cut at 200 characters, without the token', async (t) => {
  const answers = [
    () => 'HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 25\r\nConnection: close\r\n\r\ntoo many failed attempts\n',
    // A web server's 404 that echoes the target, and with it the one-time token.
    (head: string) => {
      const body = `{"message":"Route ${head.split(' ')[0]}:${head.split(' ')[1]} not found","error":"Not Found"}`
      return `HTTP/1.1 404 Not Found\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`
    },
    () => `HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\n\x1b[31mbusy\x07\u202e now\r\nsecond line\r\n${'x'.repeat(10)}`,
    () => `HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\n\r\n${'y'.repeat(500)}\n`,
    // Only the reason phrase again: said once.
    () => 'HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\nService Unavailable\n'
  ]
  let n = 0
  const tokens: string[] = []
  const { url } = await server(t, (head) => {
    tokens.push(/response=(\S+)/.exec(head)![1]!)
    return answers[Math.min(n++, answers.length - 1)]!(head)
  })
  const local = await backend(t)
  const agent = new RendezvousAgent({ url, id: TEST_ID, secret: TEST_SECRET, to: local.to, pool: 1, probeInterval: 0, backoffBase: 1, backoffMax: 20 })
  const errors: Error[] = []
  agent.on('error', (err) => errors.push(err))
  agent.start().catch(() => {})
  t.teardown(() => agent.destroy())
  // The 429's Retry-After is honoured: a second later, the others come quickly.
  while (errors.length < 5) await sleep(50)
  t.equal(errors[0]!.message, 'the rendezvous answered 429 Too Many Requests (too many failed attempts)')
  t.match(errors[1]!.message, /^the rendezvous answered 404 Not Found \(\{"message":"Route CONNECT:uuid:[^?]+\?response=\*\*\* not found","error":"Not Found"\}\); this may not be a rendezvous \(is --server the right address\?\)$/)
  t.notOk(errors[1]!.message.includes(tokens[1]!), 'the token is not in the message')
  t.equal(errors[2]!.message, 'the rendezvous answered 503 Service Unavailable ([31mbusy now)')
  t.equal(errors[3]!.message, `the rendezvous answered 500 Internal Server Error (${'y'.repeat(200)})`)
  t.equal(errors[4]!.message, 'the rendezvous answered 503 Service Unavailable')
})
