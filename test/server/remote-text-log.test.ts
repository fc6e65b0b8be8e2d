import t from 'tap'
import { raw, parse } from '../admin/raw'
import { TOKEN } from '../admin/helpers'
import { loggedServe } from '../helpers/logged-serve'
import { until } from '../helpers/until'

/*
 * What a remote party writes in its request line and Host reaches serve's
 * log lines only as a path without userinfo or query, and as printable text:
 * userinfo is a password, and a C1 control (NEL 0x85, CSI 0x9b: Node reads
 * header bytes as latin-1) forges a line for readers that split on NEL and
 * drives a terminal. On every listener of serve: public, admin, metrics.
 */

const basic = (user: string): string => `Basic ${Buffer.from(`${user}:x`).toString('base64')}`

t.test('userinfo in an absolute-form target is in no line, on the public port or the admin listener', async t => {
  const s = await loggedServe(t, 'debug')
  const relay = await raw(s.port, `GET http://alice:Hunter2Pass@example.com/x?access_token=QLEAK HTTP/1.1\r\nHost: example.com\r\nAuthorization: ${basic('nope')}\r\n\r\n`)
  t.equal(parse(relay).status, 404, 'an unknown ID')
  const admin = await raw(s.admin, `GET http://alice:Hunter2Pass@127.0.0.1/api/ids HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}\r\nConnection: close\r\n\r\n`)
  t.equal(parse(admin).status, 200)
  await until(() => s.lines().some(l => l.msg === 'rendezvous request refused'), 3000, 'the refusal line')
  const text = s.bytes().toString('latin1')
  t.notMatch(text, /Hunter2Pass|alice|QLEAK/, 'neither the userinfo nor the query')
  const refused = s.lines().find(l => l.msg === 'rendezvous request refused')
  t.equal(refused?.url, 'http://example.com/x', 'the relay\'s line names the target without its userinfo')
  const urls = s.lines().filter(l => l.req?.url !== undefined).map(l => l.req.url)
  t.ok(urls.includes('http://example.com/x'), 'Fastify\'s request line on the public port')
  t.ok(urls.includes('http://127.0.0.1/api/ids'), 'and the admin listener\'s incoming request')
})

t.test('C1 and C0 controls in a Host are escaped in every line that quotes it', async t => {
  const s = await loggedServe(t, 'debug')
  const csi = Buffer.from('GET /api/ids HTTP/1.1\r\nHost: \x9b2J\x9bH\x9b31mFAKE\r\nConnection: close\r\n\r\n', 'latin1')
  t.equal(parse(await raw(s.admin, csi)).status, 421, 'the admin listener refuses a Host that is no loopback name')
  const nel = Buffer.from('GET /api/ids HTTP/1.1\r\nHost: evil\x85[08:00:00.000] ERROR:\tforged line\r\nConnection: close\r\n\r\n', 'latin1')
  t.equal(parse(await raw(s.admin, nel)).status, 421)
  t.equal(parse(await raw(s.port, Buffer.from('GET / HTTP/1.1\r\nHost: \x9b2J\x85x\r\nConnection: close\r\n\r\n', 'latin1'))).status, 401, 'the public port challenges')
  await until(() => s.lines().filter(l => l.msg === 'admin request refused').length === 2, 3000, 'the two 421 lines')
  const bytes = s.bytes()
  for (const c1 of ['\u009b', '\u0085', '\t']) t.notOk(bytes.includes(Buffer.from(c1, 'utf8')), `no raw U+00${c1.charCodeAt(0).toString(16).padStart(2, '0')} in the log`)
  const text = bytes.toString('utf8')
  t.equal(text.split(/\r\n|[\n\r\u0085\u2028\u2029]/).filter(l => l !== '').length, s.lines().length, 'a reader that splits on NEL sees no more lines than there are')
  const hosts = s.lines().filter(l => l.req?.host !== undefined).map(l => l.req.host as string)
  t.ok(hosts.includes('\\x9b2J\\x9bH\\x9b31mFAKE'), 'the admin listener\'s incoming request, escaped')
  t.ok(hosts.includes('evil\\x85[08:00:00.000] ERROR:\\x09forged line'))
  t.ok(hosts.includes('\\x9b2J\\x85x'), 'Fastify\'s incoming request on the public port, escaped')
  const messages = s.lines().filter(l => l.msg === 'admin request refused').map(l => l.message as string)
  t.match(messages[0], /^Host "\\x9b2J\\x9bH\\x9b31mFAKE" is not a loopback name/, 'the 421\'s line quotes the Host escaped')
})

t.test('the metrics listener answers and logs a 404 with the path only, and refuses other methods with 405', async t => {
  const s = await loggedServe(t, 'debug')
  const notFound = parse(await raw(s.metrics, 'GET /metricz?access_token=QLEAK9 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'))
  t.equal(notFound.status, 404)
  t.equal(notFound.headers['content-type'], 'text/plain; charset=utf-8', 'its own answer, not Fastify\'s JSON')
  t.equal(notFound.body, 'no such path: metrics are at /metrics\n')
  t.equal(parse(await raw(s.metrics, 'GET http://u:PWLEAK2@a/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')).status, 404)
  const post = parse(await raw(s.metrics, 'POST /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'))
  t.same([post.status, post.headers.allow], [405, 'GET, HEAD'], 'a method it does not serve')
  const connect = await raw(s.metrics, 'CONNECT uuid:x?response=CTLEAK3 HTTP/1.1\r\nHost: a\r\n\r\n')
  t.match(connect, /^HTTP\/1\.1 405 Method Not Allowed\r\n/, 'a CONNECT is answered, not closed without a byte')
  t.equal(parse(connect).headers.allow, 'GET, HEAD')
  t.equal(parse(connect).headers.connection, 'close')
  t.equal(parse(await raw(s.metrics, 'GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')).status, 200, 'scrapes still work')
  await until(() => s.lines().filter(l => l.msg === 'metrics request refused').length === 4, 3000, 'four refusal lines')
  t.notMatch(s.bytes().toString('latin1'), /QLEAK9|PWLEAK2|CTLEAK3|access_token/, 'no query, userinfo or CONNECT target in any line')
  t.same(s.lines().filter(l => l.msg === 'metrics request refused').map(l => [l.level, l.status, l.method, l.url, l.listener]), [
    [30, 404, 'GET', '/metricz', 'metrics'],
    [30, 404, 'GET', 'http://a/x', 'metrics'],
    [30, 405, 'POST', '/metrics', 'metrics'],
    [30, 405, 'CONNECT', undefined, 'metrics']
  ])
  t.notOk(s.lines().some(l => /^Route /.test(l.msg)), 'not Fastify\'s own not-found line')
})
