import t from 'tap'
import { once } from 'node:events'
import http from 'node:http'
import net from 'node:net'
import tls from 'node:tls'
import { buildProblem, servePlainWithId, startCli } from '../helpers/cli'
import { openWire } from '../helpers/wire'
import { tlsCert, tlsKey } from '../helpers/tls'

/*
 * `rendezvous agent` pointed at the wrong thing, as its own process: the log
 * lines say what is wrong and which flag to look at.
 */

const ID = 'hub-hints'
const SECRET = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP'
const ISO = String.raw`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z`

type Test = Parameters<Parameters<typeof t.test>[0]>[0]

async function listen (t: Test, server: net.Server): Promise<number> {
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { server.close() })
  return (server.address() as net.AddressInfo).port
}

// Answers every request, CONNECT too, as a keep-alive web server does.
function answering (text: string): net.Server {
  return net.createServer((s) => {
    s.on('error', () => {})
    s.on('data', (d) => { if (d.includes('\r\n\r\n')) s.write(text) })
  })
}

const problem = buildProblem(t)
if (problem !== undefined) {
  t.fail(problem)
} else {
  t.test('--server at a web server that answers CONNECT 200 with a body: never "ready", nothing forwarded, a WARN line that says it is not a rendezvous', async (t) => {
    const port = await listen(t, answering('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello'))
    const requests: Buffer[] = []
    const backend = await listen(t, net.createServer((s) => { s.on('error', () => {}); s.on('data', (d) => requests.push(d)) }))
    const agent = startCli(t, ['agent', '--server', `http://127.0.0.1:${port}`, '--id', ID, '--to', `http://127.0.0.1:${backend}`, '--pool', '1'], { env: { RENDEZVOUS_SECRET: SECRET } })
    await agent.waitFor(/retrying in[^\n]*\n[^]*retrying in/)
    t.match(agent.stderr(), new RegExp(`^${ISO} WARN cannot park: 127\\.0\\.0\\.1:${port} answered CONNECT with a body \\(200 with Content-Length: 5\\): this is not a rendezvous \\(is --server the right address\\?\\)$`, 'm'))
    t.notMatch(agent.stdout(), /parked|ready for mobile clients/)
    t.same(requests, [], 'nothing reached the local service')
  })

  t.test('a refusal\'s own words are in the line: a 429\'s reason, a 405\'s with the hint', async (t) => {
    const throttled = await listen(t, answering('HTTP/1.1 429 Too Many Requests\r\nRetry-After: 55\r\nContent-Length: 25\r\nConnection: close\r\n\r\ntoo many failed attempts\n'))
    const a = startCli(t, ['agent', '--server', `http://127.0.0.1:${throttled}`, '--id', ID, '--to', 'http://127.0.0.1:9'], { env: { RENDEZVOUS_SECRET: SECRET } })
    await a.waitFor(/retrying in/)
    t.match(a.stdout(), new RegExp(`^${ISO} retrying in 55\\.0 s \\(attempt 1\\): the rendezvous answered 429 Too Many Requests \\(too many failed attempts\\)$`, 'm'))
    const body = 'the metrics listener serves GET and HEAD only\n'
    const metrics = await listen(t, answering(`HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`))
    const b = startCli(t, ['agent', '--server', `http://127.0.0.1:${metrics}`, '--id', ID, '--to', 'http://127.0.0.1:9'], { env: { RENDEZVOUS_SECRET: SECRET } })
    await b.waitFor(/retrying in/)
    t.match(b.stderr(), new RegExp(`^${ISO} WARN cannot park: the rendezvous answered 405 Method Not Allowed \\(the metrics listener serves GET and HEAD only\\); this may not be a rendezvous \\(is --server the right address\\?\\)$`, 'm'))
  })

  t.test('--to http:// for a TLS service: the client gets 502 through the relay, and the WARN line says to use https://', async (t) => {
    const { secret, port } = await servePlainWithId(t, ID)
    const server = tls.createServer({ key: tlsKey, cert: tlsCert }, (s) => { s.on('error', () => {}); s.end('HTTP/1.1 200 OK\r\n\r\n') })
    server.on('tlsClientError', () => {})
    const backend = await listen(t, server)
    const agent = startCli(t, ['agent', '--server', `http://127.0.0.1:${port}`, '--id', ID, '--to', `http://127.0.0.1:${backend}`, '--pool', '1'], { env: { RENDEZVOUS_SECRET: secret } })
    await agent.waitFor(/ready for mobile clients/)
    const wire = await openWire(port, false)
    wire.write(`GET /tls HTTP/1.1\r\nHost: h\r\nAuthorization: Basic ${Buffer.from(`${ID}:x`).toString('base64')}\r\n\r\n`)
    await wire.untilClosed()
    t.match(wire.text, /^HTTP\/1\.1 502 Bad Gateway\r\n/)
    await agent.waitFor(/GET \/tls: answered 502/)
    t.match(agent.stderr(), new RegExp(`^${ISO} WARN GET /tls: answered 502, the local service 127\\.0\\.0\\.1:${backend} closed the connection before it answered; it speaks TLS: use --to https://127\\.0\\.0\\.1:${backend} \\(the library's to option\\)$`, 'm'))
  })

  t.test('--to https:// for a plain service, and for a self-signed one: the WARN line names the flags, not OpenSSL\'s text', async (t) => {
    const { secret, port } = await servePlainWithId(t, ID)
    // Node's HTTP server answers a ClientHello 400, in plain text.
    const plain = await listen(t, http.createServer((_req, res) => res.end('plain')))
    const selfSigned = tls.createServer({ key: tlsKey, cert: tlsCert }, (s) => { s.on('error', () => {}); s.end('HTTP/1.1 200 OK\r\n\r\n') })
    selfSigned.on('tlsClientError', () => {})
    const signed = await listen(t, selfSigned)
    for (const [to, line] of [
      [plain, `the local service 127\\.0\\.0\\.1:${plain} does not speak TLS: if it is plain HTTP, use --to http://127\\.0\\.0\\.1:${plain} \\(the library's to option\\)`],
      [signed, `the local service 127\\.0\\.0\\.1:${signed} presented a certificate this agent rejects \\(DEPTH_ZERO_SELF_SIGNED_CERT\\): trust it with --to-ca FILE, its certificate or its CA \\(toCa\\), or skip the check with --to-insecure \\(toInsecure\\)`]
    ] as const) {
      const agent = startCli(t, ['agent', '--server', `http://127.0.0.1:${port}`, '--id', ID, '--to', `https://127.0.0.1:${to}`, '--pool', '1'], { env: { RENDEZVOUS_SECRET: secret } })
      await agent.waitFor(/ready for mobile clients/)
      const wire = await openWire(port, false)
      wire.write(`GET /s HTTP/1.1\r\nHost: h\r\nAuthorization: Basic ${Buffer.from(`${ID}:x`).toString('base64')}\r\n\r\n`)
      await wire.untilClosed()
      t.match(wire.text, /^HTTP\/1\.1 502 Bad Gateway\r\n/)
      await agent.waitFor(/GET \/s: answered 502/)
      t.match(agent.stderr(), new RegExp(`^${ISO} WARN GET /s: answered 502, ${line}$`, 'm'))
      t.notMatch(agent.stderr(), /ssl3_get_record|openssl/i)
      await agent.stop('SIGTERM')
    }
  })
}
