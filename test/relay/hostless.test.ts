import { Registry } from 'prom-client'
import t from 'tap'
import { capture } from '../admin/raw'
import { sample } from '../helpers/prometheus'
import { startRendezvous, type TestRendezvous } from '../helpers/rendezvous'
import { statusOf } from '../helpers/wire'

/*
 * An HTTP/1.1 request without Host used to get Node's own answer (its
 * requireHostHeader), an empty chunked 400 written before the relay or the
 * app saw the request, neither counted nor logged: only a credential naming
 * a known ID got the relay's 400. Every such request on the public port now
 * gets that 400, counted and logged as bad_head, the app's routes too;
 * HTTP/1.0, which needs no Host, is served as before.
 */

const REFUSAL = 'HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 50\r\nConnection: close\r\n\r\n' +
  'an HTTP/1.1 request needs exactly one Host header\n'

const basic = (user: string): string => `Authorization: Basic ${Buffer.from(`${user}:x`).toString('base64')}\r\n`

async function exchange (relay: TestRendezvous, head: string): Promise<string> {
  const wire = await relay.open()
  wire.write(head)
  await wire.untilClosed()
  return wire.text
}

for (const tls of [false, true]) {
  const kind = tls ? 'TLS' : 'plain'

  t.test(`${kind}: an HTTP/1.1 request without Host gets the relay's 400, counted and logged, whatever it names`, async t => {
    const metrics = new Registry()
    const log = capture()
    const relay = await startRendezvous({
      tls,
      fastify: { logger: { level: 'info', stream: log.stream } },
      plugin: { metrics, healthPath: '/healthz', unknownIdFailures: { perAddress: 1 } },
      after: app => { app.get('/app', async () => 'app\n') }
    })
    t.teardown(relay.close)
    const heads = [
      'GET / HTTP/1.1\r\n\r\n',
      `GET / HTTP/1.1\r\n${basic('nobody')}\r\n`,
      `GET / HTTP/1.1\r\n${basic('hub-1')}\r\n`,
      'GET /healthz HTTP/1.1\r\n\r\n',
      'GET /app HTTP/1.1\r\n\r\n',
      'HEAD /app HTTP/1.1\r\n\r\n'
    ]
    for (const head of heads.slice(0, -1)) t.equal(await exchange(relay, head), REFUSAL, JSON.stringify(head))
    t.equal(await exchange(relay, heads[heads.length - 1]), REFUSAL.slice(0, REFUSAL.indexOf('\r\n\r\n') + 4), 'HEAD: the same head, no body')

    const scrape = await metrics.metrics()
    t.equal(sample(scrape, 'rendezvous_requests_total{outcome="bad_head"}'), heads.length, 'each counted as bad_head')
    t.equal(sample(scrape, 'rendezvous_refusals_total{side="mobile",reason="bad_head"}'), heads.length)
    t.equal(sample(scrape, 'rendezvous_requests_total{outcome="unknown_id"}'), undefined, 'the unknown ID is not counted as one')
    // The unknown-ID throttle allows one probe here: had the Host-less one counted, this would be 429.
    t.equal(statusOf(await exchange(relay, `GET / HTTP/1.1\r\nHost: h\r\n${basic('nobody')}\r\n`)), 404, 'nor toward the unknown-ID throttle')
    const refused = log.lines().filter(l => l.msg === 'rendezvous request refused' && l.outcome === 'bad_head')
    t.equal(refused.length, heads.length, 'one line each')
    t.ok(refused.every(l => l.status === 400 && l.side === 'mobile' && l.level === 30), 'at info, with status 400')
  })

  t.test(`${kind}: HTTP/1.0 without Host is served as before`, async t => {
    const relay = await startRendezvous({ tls, plugin: { healthPath: '/healthz' }, after: app => { app.get('/app', async () => 'app\n') } })
    t.teardown(relay.close)
    const app = await exchange(relay, 'GET /app HTTP/1.0\r\n\r\n')
    t.match(app, /^HTTP\/1\.1 200 OK\r\n/)
    t.ok(app.endsWith('\r\n\r\napp\n'))
    t.equal(statusOf(await exchange(relay, 'GET /healthz HTTP/1.0\r\n\r\n')), 200)
    t.equal(statusOf(await exchange(relay, 'GET / HTTP/1.0\r\n\r\n')), 401, 'challenged')
    t.equal(statusOf(await exchange(relay, `GET / HTTP/1.0\r\n${basic('nobody')}\r\n`)), 404, 'unknown ID')
  })

  t.test(`${kind}: a request without Host pipelined behind a slow answer gets its 400 after that answer`, async t => {
    const relay = await startRendezvous({
      tls,
      after: app => { app.get('/slow', async () => { await new Promise(resolve => setTimeout(resolve, 200)); return 'slow\n' }) }
    })
    t.teardown(relay.close)
    const text = await exchange(relay, 'GET /slow HTTP/1.1\r\nHost: h\r\n\r\nGET /x HTTP/1.1\r\n\r\n')
    t.match(text, /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nslow\n/, 'the slow answer first, whole')
    t.ok(text.endsWith(`slow\n${REFUSAL}`), 'then the refusal')
  })
}

t.test('an Upgrade without Host goes to the app\'s upgrade listener, as Node hands it there', async t => {
  const relay = await startRendezvous({
    after: app => {
      app.server.on('upgrade', (_req, socket) => { socket.end('HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n') })
    }
  })
  t.teardown(relay.close)
  t.match(await exchange(relay, 'GET /ws HTTP/1.1\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n'), /^HTTP\/1\.1 101 /)
})

t.test('an app that turned Node\'s check off gets such requests itself', async t => {
  const relay = await startRendezvous({
    fastify: { http: { requireHostHeader: false } } as never,
    after: app => { app.get('/app', async () => 'app\n') }
  })
  t.teardown(relay.close)
  t.match(await exchange(relay, 'GET /app HTTP/1.1\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\napp\n$/)
})

t.test('Node\'s check is given back when the app closes', async t => {
  const relay = await startRendezvous()
  const server = relay.app.server as typeof relay.app.server & { requireHostHeader: boolean }
  t.equal(server.requireHostHeader, false, 'taken while the plugin is in place')
  await relay.close()
  t.equal(server.requireHostHeader, true)
})
