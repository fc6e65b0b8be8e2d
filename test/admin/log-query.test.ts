import t from 'tap'
import { startRendezvous } from '../helpers/rendezvous'
import { adminUrl, TOKEN } from './helpers'
import { capture, raw } from './raw'

/*
 * A client that sends the admin token in the query string
 * (`/api/ids?access_token=TOKEN`, as some OAuth tools do) is refused, and
 * Fastify's `incoming request` line used to write the whole URL, token and
 * all. The admin listener's lines carry the path only; no other line of it
 * writes the query either.
 */

t.test('the admin token in a query string never reaches the logs, whatever answers the request', async t => {
  const log = capture()
  const relay = await startRendezvous({ fastify: { logger: { level: 'trace', stream: log.stream } }, plugin: { admin: { port: 0, token: TOKEN } } })
  t.teardown(relay.close)
  const port = relay.app.rendezvous.adminAddress()!.port
  const query = `?access_token=${TOKEN}&token=${TOKEN}`
  const bearer = { authorization: `Bearer ${TOKEN}` }
  const json = { ...bearer, 'content-type': 'application/json' }
  const calls: Array<[string, string, Record<string, string>, string | undefined, number]> = [
    ['GET', '/api/ids', {}, undefined, 401],
    ['GET', '/api/ids', bearer, undefined, 200],
    ['GET', '/', {}, undefined, 200],
    ['GET', '/admin.js', {}, undefined, 200],
    ['GET', '/nothing-here', {}, undefined, 404],
    ['POST', '/api/ids', json, '{"id":', 400],
    ['POST', '/api/ids', { ...bearer, 'content-type': 'text/plain' }, 'x', 415],
    ['POST', '/api/ids/hub-1/rotate', json, '{"overlapSeconds":-1}', 400],
    ['DELETE', '/api/ids/no-such-id', bearer, undefined, 404],
    ['POST', '/api/ids/hub-1/disconnect', json, '{}', 200]
  ]
  for (const [method, path, headers, body, status] of calls) {
    const res = await fetch(adminUrl(relay, path + query), { method, headers, body })
    t.equal(res.status, status, `${method} ${path}`)
  }
  t.match(await raw(port, `GET /%zz${query} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}\r\nConnection: close\r\n\r\n`), /^HTTP\/1\.1 400 /, 'a path the router cannot read')
  t.match(await raw(port, `GET /api/ids${query} HTTP/1.1\r\nHost: attacker.example\r\nConnection: close\r\n\r\n`), /^HTTP\/1\.1 421 /, 'a foreign Host')
  t.match(await raw(port, `FOO /api/ids${query} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`), /^HTTP\/1\.1 400 /, 'a head the parser refuses')
  t.match(await raw(port, `CONNECT ${TOKEN}.example:443 HTTP/1.1\r\nHost: ${TOKEN}.example:443\r\n\r\n`), /^HTTP\/1\.1 405 /, 'a CONNECT')
  await relay.close()

  const text = log.text()
  t.notOk(text.includes(TOKEN), 'the token is in no line')
  t.notMatch(text, /access_token/, 'nor is the query')
  const urls = log.lines().filter(l => l.req?.url !== undefined).map(l => l.req.url as string)
  t.ok(urls.length >= calls.length, 'the request lines are still there')
  t.same([...new Set(urls)].sort(), ['/', '/%zz', '/admin.js', '/api/ids', '/api/ids/hub-1/disconnect', '/api/ids/hub-1/rotate', '/api/ids/no-such-id', '/nothing-here'].sort(), 'with the path of each URL')
})
