import t from 'tap'
import underPressure from '@fastify/under-pressure'
import { startRendezvous } from '../helpers/rendezvous'
import { statusOf } from '../helpers/wire'

const CHALLENGE = /^Digest realm="rendezvous", qop="auth, auth-int", nonce="([0-9a-f]{32})", opaque="([0-9a-f]{32})"$/

function header (text: string, name: string): string | undefined {
  const m = new RegExp(`\\r\\n${name}: ([^\\r]*)\\r\\n`, 'i').exec(text)
  return m?.[1]
}

for (const tls of [false, true]) {
  const scheme = tls ? 'https' : 'http'

  t.test(`${scheme}: requests without a credential`, async t => {
    const relay = await startRendezvous({
      tls,
      after: app => { app.get('/healthz', async () => ({ status: 'ok' })) }
    })
    t.teardown(relay.close)

    t.test('unknown routes get the Digest challenge with a fresh nonce, and the connection stays open', async t => {
      const c = await relay.open()
      c.write('GET /anything HTTP/1.1\r\nHost: h\r\n\r\n')
      await c.untilText('user name\n')
      const first = c.drain().toString('latin1')
      t.equal(statusOf(first), 401)
      t.match(first, /\r\nWWW-Authenticate: Digest /, 'the field name keeps the spec\'s case')
      const a = header(first, 'WWW-Authenticate') ?? ''
      t.match(a, CHALLENGE)
      c.write('GET /again HTTP/1.1\r\nHost: h\r\n\r\n')
      await c.untilText('user name\n')
      const second = header(c.drain().toString('latin1'), 'WWW-Authenticate') ?? ''
      t.match(second, CHALLENGE)
      t.not(CHALLENGE.exec(a)?.[1], CHALLENGE.exec(second)?.[1], 'each challenge has a new nonce')
      t.notOk(c.closed)
      c.destroy()
    })

    t.test('the app\'s own routes answer as usual', async t => {
      const c = await relay.open()
      c.write('GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n')
      await c.untilText('}')
      t.equal(statusOf(c.text), 200)
      t.match(c.text, /\{"status":"ok"\}$/)
      c.destroy()
    })

    t.test('a non-rendezvous scheme such as Bearer is the app\'s business', async t => {
      const c = await relay.open()
      c.write('GET /healthz HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer abc\r\n\r\n')
      await c.untilText('}')
      t.equal(statusOf(c.text), 200)
      c.destroy()
    })

    t.test('?rendezvous= is ignored on a request that is not an Upgrade', async t => {
      const hidden = await relay.park('hub-1')
      const c = await relay.open()
      c.write('GET /page?rendezvous=hub-1 HTTP/1.1\r\nHost: h\r\n\r\n')
      await c.untilText('user name\n')
      t.equal(statusOf(c.text), 401)
      t.equal(hidden.text, '')
      c.destroy()
      hidden.destroy()
    })
  })

  t.test(`${scheme}: refusals are a real status, then a close`, async t => {
    const relay = await startRendezvous({
      tls,
      plugin: { waitTimeout: 300, retryAfter: 7, maxWaitersPerId: 1 },
      after: app => { app.get('/basic-area', async req => ({ auth: req.headers.authorization })) }
    })
    t.teardown(relay.close)

    const cases: Array<[string, string, number, RegExp?]> = [
      ['a malformed Digest header', 'Authorization: Digest username="hub-1\r\n', 400],
      ['a Digest header without a user name', 'Authorization: Digest realm="rendezvous"\r\n', 400],
      ['two Authorization fields', 'Authorization: Digest username="hub-1"\r\nAuthorization: Basic aHViLTE6eA==\r\n', 400],
      ['Basic that is not base64 of user:password', 'Authorization: Basic !!!!\r\n', 400],
      ['a well-formed credential for an unknown ID', 'Authorization: Digest username="nobody", realm="rendezvous"\r\n', 404],
      ['a known ID with nothing parked', 'Authorization: Digest username="hub-1", realm="rendezvous"\r\n', 503, /\r\nRetry-After: 7\r\n/i]
    ]
    for (const [name, auth, status, extra] of cases) {
      t.test(name, async t => {
        const c = await relay.open()
        c.write('GET /x HTTP/1.1\r\nHost: h\r\n' + auth + '\r\n')
        await c.untilClosed()
        t.equal(statusOf(c.text), status, c.text)
        t.match(c.text, /\r\nConnection: close\r\n/i)
        if (extra !== undefined) t.match(c.text, extra)
      })
    }

    t.test('a request line that is not HTTP/1.x is malformed, with a credential or without', async t => {
      for (const auth of ['', 'Authorization: Digest username="hub-1"\r\n']) {
        const c = await relay.open()
        c.write(`GET /x HTTP/2.0\r\nHost: h\r\n${auth}\r\n`)
        await c.untilClosed()
        t.equal(statusOf(c.text), 400, c.text)
        t.match(c.text, /\r\n\r\nmalformed request\n$/)
      }
    })

    t.test('a HEAD request is refused with the same head and no body', async t => {
      for (const [auth, status] of [['Digest realm="rendezvous"', 400], ['Digest username="hub-1"', 503]] as const) {
        const c = await relay.open()
        c.write(`HEAD /x HTTP/1.1\r\nHost: h\r\nAuthorization: ${auth}\r\n\r\n`)
        await c.untilClosed()
        t.equal(statusOf(c.text), status, c.text)
        t.match(c.text, /\r\nContent-Length: [1-9][0-9]*\r\n/i, 'the length a GET would have had')
        t.ok(c.text.endsWith('\r\n\r\n'), `${status}: nothing after the head`)
      }
    })

    t.test('an Upgrade whose ?rendezvous= and Authorization name different IDs', async t => {
      const c = await relay.open()
      c.write('GET /ws?rendezvous=hub-1 HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
        'Authorization: Digest username="other"\r\n\r\n')
      await c.untilClosed()
      t.equal(statusOf(c.text), 400)
    })

    t.test('an unknown ID on one of the app\'s routes is left to the app', async t => {
      const c = await relay.open()
      c.write('GET /basic-area HTTP/1.1\r\nHost: h\r\nAuthorization: Basic YWRtaW46cHc=\r\n\r\n')
      await c.untilText('}')
      t.equal(statusOf(c.text), 200)
      t.match(c.text, /"auth":"Basic YWRtaW46cHc="/)
      c.destroy()
    })

    t.test('clients beyond maxWaitersPerId get 503 at once', async t => {
      const a = await relay.open()
      a.write('GET /a HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="hub-1"\r\n\r\n')
      while (relay.app.rendezvous.stats().waiting < 1) await new Promise(resolve => setTimeout(resolve, 5))
      const b = await relay.open()
      b.write('GET /b HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="hub-1"\r\n\r\n')
      await b.untilClosed()
      t.equal(statusOf(b.text), 503)
      t.equal(a.text, '', 'the first client is still waiting')
      await a.untilClosed()
      t.equal(statusOf(a.text), 503)
    })
  })
}

t.test('under pressure, rendezvous requests get 503 with Retry-After', async t => {
  let pressure = false
  const relay = await startRendezvous({
    before: async app => {
      await app.register(underPressure, { healthCheck: async () => !pressure, healthCheckInterval: 20 })
    }
  })
  t.teardown(relay.close)
  const hidden = await relay.park('hub-1')
  pressure = true
  await new Promise(resolve => setTimeout(resolve, 100))
  const c = await relay.open()
  c.write('GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="hub-1"\r\n\r\n')
  await c.untilClosed()
  t.equal(statusOf(c.text), 503)
  t.match(c.text, /\r\nRetry-After: \d+\r\n/i)
  t.equal(hidden.text, '', 'the parked connection was not used')
  hidden.destroy()
})

t.test('while closing, waiting clients get 503 and nobody hangs', async t => {
  const relay = await startRendezvous({ plugin: { waitTimeout: 10_000 } })
  const c = await relay.open()
  c.write('GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="hub-1"\r\n\r\n')
  while (relay.app.rendezvous.stats().waiting < 1) await new Promise(resolve => setTimeout(resolve, 5))
  const closed = relay.close()
  await c.untilClosed()
  t.equal(statusOf(c.text), 503)
  await closed
})
