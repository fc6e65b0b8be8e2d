import { Registry } from 'prom-client'
import t from 'tap'
import { startRendezvous } from '../helpers/rendezvous'
import { TOKEN } from './helpers'
import { adminCounts, capture, parse, raw, SECURITY_HEADERS } from './raw'

/*
 * Node answered an HTTP/1.1 request without Host on the admin listener
 * itself (its requireHostHeader): an empty chunked 400, not JSON, without
 * the listener's headers, never counted or logged. It is now the API's own
 * refusal, before the token is looked at. HTTP/1.0 needs no Host and is
 * served as before.
 */

t.test('an HTTP/1.1 request without Host gets a JSON 400 with the headers, counted and logged', async t => {
  const metrics = new Registry()
  const log = capture()
  const relay = await startRendezvous({ fastify: { logger: { level: 'info', stream: log.stream } }, plugin: { metrics, admin: { port: 0, token: TOKEN } } })
  t.teardown(relay.close)
  const port = relay.app.rendezvous.adminAddress()!.port

  for (const head of [`GET /api/ids HTTP/1.1\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`, 'GET /api/ids HTTP/1.1\r\nAuthorization: Bearer wrong\r\n\r\n', 'GET / HTTP/1.1\r\n\r\n']) {
    const answer = await raw(port, head)
    const { status, headers, body } = parse(answer)
    t.equal(status, 400, answer.split('\r\n')[0])
    t.match(answer, /^HTTP\/1\.1 400 Bad Request\r\n/)
    t.equal(headers['content-type'], 'application/json; charset=utf-8')
    t.equal(headers.connection, 'close')
    for (const name of SECURITY_HEADERS) t.ok(headers[name], name)
    t.equal(Number(headers['content-length']), Buffer.byteLength(body), 'a whole body')
    t.same(JSON.parse(body), { error: 'bad_request', message: 'an HTTP/1.1 request needs exactly one Host header' })
  }
  t.same(await adminCounts(metrics), { 'list 400': 2, 'page 400': 1 }, 'each counted once')

  const ok = await raw(port, `GET /api/ids HTTP/1.0\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`)
  t.match(ok, /^HTTP\/1\.1 200 OK\r\n/, 'HTTP/1.0 without Host is served')
  t.same(JSON.parse(parse(ok).body).ids.map((i: { id: string }) => i.id), ['hub-1'])

  await relay.close()
  const refused = log.lines().filter(l => l.msg === 'admin request refused')
  t.same(refused.map(l => [l.status, l.error, l.message]), Array(3).fill([400, 'bad_request', 'an HTTP/1.1 request needs exactly one Host header']), 'one line each')
  t.ok(refused.every(l => l.level === 30), 'at info')
})
