import t from 'tap'
import { parse, raw } from '../admin/raw'
import { sample } from '../helpers/prometheus'
import { TOKEN } from '../admin/helpers'
import { loggedServe } from '../helpers/logged-serve'

/*
 * serve's listeners each answered an HTTP/1.1 request without Host with
 * Node's own empty chunked 400 (requireHostHeader), counted and logged by
 * none of them. Each now answers in its own refusal form: the public port
 * with the relay's 400 (bad_head), the admin listener in JSON, the metrics
 * listener in plain words, each closing the connection and logging a line.
 */

const NEEDS_HOST = 'an HTTP/1.1 request needs exactly one Host header'

t.test('every listener of serve answers an HTTP/1.1 request without Host itself', async t => {
  const { app, port, admin, metrics, lines: logLines } = await loggedServe(t, 'info')

  for (const path of ['/', '/healthz', '/readyz']) {
    t.equal(await raw(port, `GET ${path} HTTP/1.1\r\n\r\n`),
      `HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 50\r\nConnection: close\r\n\r\n${NEEDS_HOST}\n`, `public ${path}`)
  }

  const json = parse(await raw(admin, `GET /api/ids HTTP/1.1\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`))
  t.equal(json.status, 400, 'admin')
  t.equal(json.headers.connection, 'close')
  t.equal(json.headers['x-content-type-options'], 'nosniff')
  t.same(JSON.parse(json.body), { error: 'bad_request', message: NEEDS_HOST })

  for (const path of ['/metrics', '/elsewhere']) {
    const text = parse(await raw(metrics, `GET ${path} HTTP/1.1\r\n\r\n`))
    t.equal(text.status, 400, `metrics listener ${path}`)
    t.equal(text.headers.connection, 'close')
    t.equal(text.headers['content-type'], 'text/plain; charset=utf-8')
    t.equal(text.body, `${NEEDS_HOST}\n`)
  }
  const scrape = await raw(metrics, 'GET /metrics HTTP/1.0\r\n\r\n')
  t.match(scrape, /^HTTP\/1\.1 200 OK\r\n/, 'HTTP/1.0 without Host is still served')
  t.equal(sample(parse(scrape).body, 'rendezvous_requests_total{outcome="bad_head"}'), 3, 'the public port counted its three')
  t.equal(sample(parse(scrape).body, 'rendezvous_admin_requests_total{action="list",status="400"}'), 1, 'the admin listener its one')

  await app.close()
  const lines = logLines()
  t.equal(lines.filter(l => l.msg === 'rendezvous request refused' && l.outcome === 'bad_head' && l.status === 400).length, 3, 'public: a line each')
  t.equal(lines.filter(l => l.msg === 'admin request refused' && l.status === 400).length, 1, 'admin: a line')
  const scrapes = lines.filter(l => l.msg === 'metrics request refused')
  t.same(scrapes.map(l => [l.listener, l.status, l.method, l.level]), [['metrics', 400, 'GET', 30], ['metrics', 400, 'GET', 30]], 'metrics: a line each, at info')
})
