import t from 'tap'
import { once } from 'node:events'
import net from 'node:net'
import { buildProblem, runCli, servePlainWithId, startCli } from '../helpers/cli'
import { openWire } from '../helpers/wire'

/*
 * `rendezvous agent` as its own process, in front of `serve --no-tls`, under
 * the faults an operator meets: a backend that drops the request, a box at
 * the relay's address that asks for a long Retry-After, refused credentials.
 */

const ID = 'hub-faults'
const ISO = String.raw`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z`

type Test = Parameters<Parameters<typeof t.test>[0]>[0]

async function listen (t: Test, onSocket: (s: net.Socket) => void): Promise<number> {
  const server = net.createServer((s) => { s.on('error', () => {}); onSocket(s) })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  return (server.address() as net.AddressInfo).port
}

const problem = buildProblem(t)
if (problem !== undefined) {
  t.fail(problem)
} else {
  t.test('a backend that accepts and closes without a byte: the mobile client gets 502 through the relay, and the agent logs it at warn with the reason', async (t) => {
    const { secret, port } = await servePlainWithId(t, ID)
    const backend = await listen(t, (s) => { s.once('data', () => s.end()) })
    const agent = startCli(t, ['agent', '--server', `http://127.0.0.1:${port}`, '--id', ID, '--to', `http://127.0.0.1:${backend}`, '--pool', '1'], { env: { RENDEZVOUS_SECRET: secret } })
    await agent.waitFor(/ready for mobile clients/)
    const wire = await openWire(port, false)
    wire.write(`GET /dropped?q=1 HTTP/1.1\r\nHost: h\r\nAuthorization: Basic ${Buffer.from(`${ID}:x`).toString('base64')}\r\n\r\n`)
    await wire.untilClosed()
    t.match(wire.text, /^HTTP\/1\.1 502 Bad Gateway\r\n[^]*\r\n\r\nThe hidden server's local service cannot be reached\.\n$/)
    await agent.waitFor(/GET \/dropped: answered 502/)
    t.match(agent.stderr(), new RegExp(`^${ISO} WARN GET /dropped: answered 502, the local service 127\\.0\\.0\\.1:${backend} closed the connection before it answered$`, 'm'))
    t.notMatch(agent.stdout(), /relayed in/, 'no info line that would call it a normal relay')
  })

  t.test('a long Retry-After from whatever answers at the relay\'s address: waited for at most max(--backoff-max, 60 s), and --help says so', async (t) => {
    const port = await listen(t, (s) => {
      s.once('data', () => s.end('HTTP/1.1 503 Service Unavailable\r\nRetry-After: 120\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbusy'))
    })
    const agent = startCli(t, ['agent', '--server', `http://127.0.0.1:${port}`, '--id', ID, '--to', 'http://127.0.0.1:9', '--backoff-max', '2'], { env: { RENDEZVOUS_SECRET: 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP' } })
    await agent.waitFor(/retrying in/)
    t.match(agent.stdout(), new RegExp(`^${ISO} retrying in 60\\.0 s \\(attempt 1\\): the rendezvous answered 503 Service Unavailable \\(busy\\)$`, 'm'))
    const help = await runCli(t, ['agent', '--help'])
    t.match(help.stdout, /--backoff-max SECONDS +longest wait between retries \(default 30\); a server's\s+Retry-After is honoured up to the larger of this and 60 s/)
  })

  t.test('refused credentials: the fatal line is timestamped like every other line, exit 1; a bad command line keeps the usual form, exit 2', async (t) => {
    const { port } = await servePlainWithId(t, ID)
    const refused = await runCli(t, ['agent', '--server', `http://127.0.0.1:${port}`, '--id', ID, '--to', 'http://127.0.0.1:9'], { env: { RENDEZVOUS_SECRET: 'MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43UOV3HO6DZ' } })
    t.equal(refused.code, 1)
    t.match(refused.stderr, new RegExp(`^${ISO} ERROR the rendezvous refused the credentials for ID ${ID} \\(401\\): check the ID and the secret[^\\n]*\\n$`))
    const usage = await runCli(t, ['agent', '--server', `http://127.0.0.1:${port}`, '--id', ID, '--to', 'http://127.0.0.1:9', '--pool', '0'], { env: { RENDEZVOUS_SECRET: 'MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43UOV3HO6DZ' } })
    t.equal(usage.code, 2)
    t.equal(usage.stderr, 'rendezvous: agent: --pool must be a whole number of at least 1\n')
  })
}
