import { Registry } from 'prom-client'
import t, { type Test } from 'tap'
import { startRendezvous } from '../helpers/rendezvous'
import { TOKEN } from './helpers'
import { adminCounts, capture, parse, raw, SECURITY_HEADERS } from './raw'

/*
 * What never reaches Fastify's routes on the admin listener: a CONNECT
 * (Node hands it to the server's 'connect' event, and closed the socket
 * without a word when nothing listened) and the heads Node's parser
 * refuses (an unknown method, HTTP/2's preface, a head too large), which
 * were answered in plain text without the listener's headers and never
 * counted. Each is now JSON {"error","message"} with those headers, counted
 * and logged like every refusal.
 */

function expectJson (t: Test, answer: string, status: number, error: string, message: RegExp): void {
  const { status: got, headers, body } = parse(answer)
  t.equal(got, status, `${status}: ${answer.slice(0, 40)}`)
  t.equal(headers['content-type'], 'application/json; charset=utf-8')
  t.equal(headers.connection, 'close')
  for (const name of SECURITY_HEADERS) t.ok(headers[name], name)
  t.equal(Number(headers['content-length']), Buffer.byteLength(body), 'a whole body')
  const parsed = JSON.parse(body)
  t.same(Object.keys(parsed).sort(), ['error', 'message'])
  t.equal(parsed.error, error)
  t.match(parsed.message, message)
}

t.test('CONNECT, unknown methods, HTTP/2 and oversized heads get a JSON refusal with the headers, counted', async t => {
  const metrics = new Registry()
  const log = capture()
  const relay = await startRendezvous({ fastify: { logger: { level: 'info', stream: log.stream } }, plugin: { metrics, admin: { port: 0, token: TOKEN } } })
  t.teardown(relay.close)
  const port = relay.app.rendezvous.adminAddress()!.port

  const connect = await raw(port, 'CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1:443\r\n\r\n')
  expectJson(t, connect, 405, 'method_not_allowed', /relays nothing[^]*public port/)
  t.equal(parse(connect).headers.allow, 'GET, POST, DELETE')
  // An agent pointed at the admin port sends its CONNECT with its token: answered the same way.
  expectJson(t, await raw(port, `CONNECT uuid:hub-1?response=abc HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`), 405, 'method_not_allowed', /public port/)

  const malformed = /malformed request[^]*HTTP\/1\.1/
  expectJson(t, await raw(port, 'FOO / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'), 400, 'bad_request', malformed)
  expectJson(t, await raw(port, 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), 400, 'bad_request', malformed)
  expectJson(t, await raw(port, 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header: x\r\n\r\n'), 400, 'bad_request', malformed)
  expectJson(t, await raw(port, `GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'x'.repeat(20_000)}\r\n\r\n`), 431, 'headers_too_large', /too large/)

  t.same(await adminCounts(metrics), { 'other 405': 2, 'other 400': 3, 'other 431': 1 }, 'each counted once')
  // The listener still serves: nothing above took it down.
  t.match(await raw(port, `GET /api/ids HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}\r\nConnection: close\r\n\r\n`), /^HTTP\/1\.1 200 /)
  await relay.close()
  const refused = log.lines().filter(l => l.msg === 'admin request refused')
  t.same(refused.map(l => l.status), [405, 405, 400, 400, 400, 431], 'one line each, at info')
  t.ok(refused.every(l => l.level === 30))
  t.notOk(log.text().includes(TOKEN), 'no token in the log')
})
