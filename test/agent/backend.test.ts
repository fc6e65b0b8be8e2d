import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import https from 'node:https'
import net from 'node:net'
import { RendezvousAgent } from '../../lib/agent/agent'
import { otherCert, otherKey, tlsCert, tlsKey } from '../helpers/tls'
import { FakeRendezvous, TEST_ID, TEST_SECRET } from './fake-rendezvous'
import { type TapTest, readAll } from './helpers'

const GET = 'GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'

/**
 * A loopback port that never accepts: a listener that never calls accept(),
 * its backlog filled, so the kernel drops further SYNs as a switched-off
 * device would.
 */
async function blackHole (t: TapTest): Promise<number> {
  const py = spawn(process.env.RENDEZVOUS_PYTHON ?? 'python3', ['-c',
    'import socket, sys\ns = socket.socket()\ns.bind(("127.0.0.1", 0))\ns.listen(0)\nprint(s.getsockname()[1], flush=True)\nsys.stdin.read()'],
  { stdio: ['pipe', 'pipe', 'inherit'] })
  t.teardown(() => { py.kill() })
  const [line] = await once(py.stdout, 'data') as [Buffer]
  const port = Number(line.toString().trim())
  const fillers: net.Socket[] = []
  t.teardown(() => { for (const s of fillers) s.destroy() })
  for (let i = 0; i < 8; i++) {
    const s = net.connect(port, '127.0.0.1')
    s.on('error', () => {})
    fillers.push(s)
    const connected = await Promise.race([once(s, 'connect').then(() => true), new Promise((resolve) => setTimeout(resolve, 300, false))])
    if (connected !== true) return port
  }
  throw new Error('the backlog never filled')
}

async function agentFor (t: TapTest, options: Partial<ConstructorParameters<typeof RendezvousAgent>[0]> & { to: string }): Promise<FakeRendezvous> {
  const fake = await new FakeRendezvous({ id: TEST_ID, secret: TEST_SECRET }).listen()
  t.teardown(() => fake.close())
  const agent = new RendezvousAgent({ url: fake.url, id: TEST_ID, secret: TEST_SECRET, ca: tlsCert, pool: 1, ...options })
  agent.on('error', () => {})
  t.teardown(() => agent.close())
  await agent.start()
  await fake.waitParked(1)
  return fake
}

async function httpsBackend (t: TapTest, key: Buffer, cert: Buffer): Promise<string> {
  const server = https.createServer({ key, cert }, (req, res) => res.end(`tls backend saw ${req.url}`))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  return `https://127.0.0.1:${(server.address() as net.AddressInfo).port}`
}

t.test('a backend that never accepts: 504 with a short body after the connect timeout', async (t) => {
  const port = await blackHole(t)
  const fake = await agentFor(t, { to: `http://127.0.0.1:${port}`, toConnectTimeout: 700 })
  const started = Date.now()
  const socket = fake.take(GET)
  // Without a connect timeout the kernel's SYN retries take minutes: give up long before.
  const timer = setTimeout(() => socket.destroy(), 10_000)
  const answer = (await readAll(socket)).toString()
  clearTimeout(timer)
  const elapsed = Date.now() - started
  t.match(answer, /^HTTP\/1\.1 504 Gateway Timeout\r\n[^]*Connection: close\r\n\r\nThe hidden server's local service did not accept the connection in time\.\n$/)
  t.ok(elapsed >= 600 && elapsed < 5000, `answered after ${elapsed} ms`)
})

t.test('a backend that refuses: 502 at once', async (t) => {
  const closed = net.createServer().listen(0, '127.0.0.1')
  await once(closed, 'listening')
  const port = (closed.address() as net.AddressInfo).port
  closed.close()
  const fake = await agentFor(t, { to: `http://127.0.0.1:${port}` })
  const answer = (await readAll(fake.take(GET))).toString()
  t.match(answer, /^HTTP\/1\.1 502 Bad Gateway\r\n[^]*cannot be reached\.\n$/)
})

t.test('an https backend, verified with toCa', async (t) => {
  const to = await httpsBackend(t, tlsKey, tlsCert)
  const fake = await agentFor(t, { to, toCa: tlsCert })
  t.match((await readAll(fake.take(GET))).toString(), /^HTTP\/1\.1 200 OK\r\n[^]*tls backend saw \/x$/)
})

t.test('an https backend with a certificate nobody vouches for: 502, or toInsecure', async (t) => {
  const to = await httpsBackend(t, otherKey, otherCert)
  const strict = await agentFor(t, { to, toCa: tlsCert })
  t.match((await readAll(strict.take(GET))).toString(), /^HTTP\/1\.1 502 Bad Gateway\r\n/)
  const lax = await agentFor(t, { to, toInsecure: true })
  t.match((await readAll(lax.take(GET))).toString(), /^HTTP\/1\.1 200 OK\r\n[^]*tls backend saw \/x$/)
})
