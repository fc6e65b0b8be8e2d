import t from 'tap'
import { createHmac } from 'node:crypto'
import { startRendezvous, untilParked, type TestRendezvous } from '../helpers/rendezvous'
import { statusOf, type WireClient } from '../helpers/wire'
import { createV1Token } from '../../lib/tokens/v1'
import { createTotp } from '../../lib/tokens/totp'
import { SECRET } from '../helpers/fixtures'
import { until } from '../helpers/until'

async function connect (relay: TestRendezvous, target: string, extra = ''): Promise<WireClient> {
  const c = await relay.open()
  c.write(`CONNECT ${target} HTTP/1.1\r\nHost: h\r\n\r\n${extra}`)
  await c.untilText('\r\n\r\n')
  return c
}

async function refused (relay: TestRendezvous, target: string, extra = ''): Promise<string> {
  const c = await connect(relay, target, extra)
  await c.untilClosed()
  return c.text
}

for (const tls of [false, true]) {
  t.test(`${tls ? 'https' : 'http'}: CONNECT answers`, async t => {
    const relay = await startRendezvous({ tls, ids: ['hub-1', 'Hub-Caps'] })
    t.teardown(relay.close)

    t.test('a good v1 token gets exactly "HTTP/1.1 200 OK" and the socket is parked', async t => {
      const c = await connect(relay, `uuid:hub-1?response=${createV1Token('hub-1', SECRET)}`)
      t.equal(c.text, 'HTTP/1.1 200 OK\r\n\r\n')
      await untilParked(relay, 1)
      t.equal(relay.app.rendezvous.parkedFor('hub-1'), 1)
      c.destroy()
      await untilParked(relay, 0)
    })

    t.test('IDs match case-insensitively on both sides', async t => {
      const c = await connect(relay, `uuid:HUB-CAPS?response=${createV1Token('HUB-CAPS', SECRET)}`)
      t.equal(statusOf(c.text), 200)
      const client = await relay.open()
      client.write('GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="hub-caps"\r\n\r\n')
      await c.untilText('GET / HTTP/1.1\r\nHost: h\r\n\r\n')
      client.destroy()
      await c.untilClosed()
    })

    const refusals: Array<[string, string, number]> = [
      ['a malformed target', 'uuid:?response=x', 400],
      ['a target with bad ID characters', 'uuid:a%20b?response=x', 400],
      ['a target that is not uuid:, which is never proxied', '127.0.0.1:22', 400],
      ['an http URL target', 'http://example.com/', 400],
      ['a missing token', 'uuid:hub-1', 407],
      ['an empty token', 'uuid:hub-1?response=', 407],
      ['a wrong v1 mac', `uuid:hub-1?response=${createV1Token('hub-1', 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA')}`, 401],
      ['a stale v1 token', `uuid:hub-1?response=${createV1Token('hub-1', SECRET, { now: Date.now() - 125_000 })}`, 401],
      ['a v1 token from the future', `uuid:hub-1?response=${createV1Token('hub-1', SECRET, { now: Date.now() + 125_000 })}`, 401],
      ['garbage', 'uuid:hub-1?response=not-a-token', 401]
    ]
    for (const [name, target, status] of refusals) {
      t.test(name, async t => {
        const text = await refused(relay, target)
        t.equal(statusOf(text), status, text)
        t.match(text, /\r\nConnection: close\r\n/i)
      })
    }

    t.test('a CONNECT that is not HTTP/1.x is malformed, even with a good token', async t => {
      const c = await relay.open()
      c.write(`CONNECT uuid:hub-1?response=${createV1Token('hub-1', SECRET)} HTTP/2.0\r\nHost: h\r\n\r\n`)
      await c.untilClosed()
      t.equal(statusOf(c.text), 400, c.text)
      t.match(c.text, /\r\n\r\nmalformed request\n$/)
      t.equal(relay.app.rendezvous.stats().parked, 0)
    })

    t.test('an unknown ID is answered exactly like a wrong token', async t => {
      const unknown = await refused(relay, `uuid:nobody?response=${createV1Token('nobody', SECRET)}`)
      const wrong = await refused(relay, `uuid:hub-1?response=${createV1Token('hub-1', 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA')}`)
      // Date may tick between the two answers.
      const undated = (text: string): string => text.replace(/\r\nDate: [^\r]*/, '')
      t.equal(undated(unknown), undated(wrong))
      t.match(unknown, /\r\nDate: /)
      t.equal(statusOf(unknown), 401)
    })

    t.test('a v1 token is accepted once', async t => {
      const token = createV1Token('hub-1', SECRET)
      const first = await connect(relay, `uuid:hub-1?response=${token}`)
      t.equal(statusOf(first.text), 200)
      t.equal(statusOf(await refused(relay, `uuid:hub-1?response=${token}`)), 401)
      first.destroy()
    })

    t.test('the mac is HMAC-SHA256 over the documented message', async t => {
      const seconds = String(Math.floor(Date.now() / 1000))
      const nonce = 'abcdefghijklmnop'
      const key = Buffer.from(SECRET_BYTES_HEX, 'hex')
      const mac = createHmac('sha256', key).update(`rendezvous-v1\nhub-1\n${seconds}\n${nonce}`).digest('base64url')
      const c = await connect(relay, `uuid:HUB-1?response=v1.${seconds}.${nonce}.${mac}`)
      t.equal(c.text, 'HTTP/1.1 200 OK\r\n\r\n')
      c.destroy()
    })

    t.test('bytes sent along with the CONNECT head get 409', async t => {
      const text = await refused(relay, `uuid:hub-1?response=${createV1Token('hub-1', SECRET)}`, 'GET / HTTP/1.1\r\n\r\n')
      t.equal(statusOf(text), 409)
    })

    t.test('bytes from a parked socket before any client make it unusable', async t => {
      const c = await connect(relay, `uuid:hub-1?response=${createV1Token('hub-1', SECRET)}`)
      await untilParked(relay, 1)
      c.write('x')
      await c.untilClosed()
      await untilParked(relay, 0)
      t.pass('closed and left the lot')
    })
  })
}

// base32 JBSWY3DPEHPK3PXP... decoded, written out so the test does not trust the code under test.
const SECRET_BYTES_HEX = '48656c6c6f21deadbeef48656c6c6f21deadbeef'

t.test('TOTP modes', async t => {
  for (const [mode, first, again] of [['strict', 200, 401], ['reuse', 200, 200], ['off', 401, 401]] as const) {
    t.test(mode, async t => {
      const relay = await startRendezvous({ plugin: { totp: mode } })
      t.teardown(relay.close)
      const code = createTotp(SECRET)
      const a = await connect(relay, `uuid:hub-1?response=${code}`)
      t.equal(statusOf(a.text), first)
      const b = await connect(relay, `uuid:hub-1?response=${code}`)
      t.equal(statusOf(b.text), again)
      const stale = await connect(relay, `uuid:hub-1?response=${createTotp(SECRET, Date.now() - 95_000)}`)
      t.equal(statusOf(stale.text), 401, 'a code three steps old is refused')
      for (const w of [a, b, stale]) w.destroy()
    })
  }
  t.test('8-digit codes and the previous step are accepted', async t => {
    const relay = await startRendezvous()
    t.teardown(relay.close)
    const c = await connect(relay, `uuid:hub-1?response=${createTotp(SECRET, Date.now() - 30_000, 8)}`)
    t.equal(statusOf(c.text), 200)
    c.destroy()
  })
})

t.test('lot limits answer 503 with Retry-After', async t => {
  const relay = await startRendezvous({ ids: ['a', 'b'], plugin: { maxParkedPerId: 2, maxParked: 3, retryAfter: 9 } })
  t.teardown(relay.close)
  const parked = [await relay.park('a'), await relay.park('a')]
  const perId = await refused(relay, `uuid:a?response=${createV1Token('a', SECRET)}`)
  t.equal(statusOf(perId), 503)
  t.match(perId, /\r\nRetry-After: 9\r\n/i)
  parked.push(await relay.park('b'))
  const global = await refused(relay, `uuid:b?response=${createV1Token('b', SECRET)}`)
  t.equal(statusOf(global), 503)
  for (const p of parked) p.destroy()
})

t.test('brute force: 10 failures per (address, ID) give 429, per address 100 across IDs', async t => {
  const relay = await startRendezvous({ ids: ['hub-1', 'hub-2'], plugin: { authFailures: { perPair: 3, perAddress: 5, window: 60_000, coolOff: 30_000 } } })
  t.teardown(relay.close)
  const bad = (id: string): string => `uuid:${id}?response=${createV1Token(id, 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA')}`
  const statuses: number[] = []
  for (let i = 0; i < 5; i++) statuses.push(statusOf(await refused(relay, bad('hub-1'))) ?? 0)
  t.same(statuses, [401, 401, 401, 429, 429], 'after 3 failures, not at the third')
  const locked = await refused(relay, `uuid:hub-1?response=${createV1Token('hub-1', SECRET)}`)
  t.equal(statusOf(locked), 429, 'even a good token waits out the cool-off')
  t.match(locked, /\r\nRetry-After: (\d+)\r\n/i)
  t.equal(statusOf(await refused(relay, bad('hub-2'))), 401, 'another ID from the same address still counts on its own')
  t.equal(statusOf(await refused(relay, bad('hub-2'))), 401, 'the fifth failure from the address trips its limit, and is answered as a failure')
  t.equal(statusOf(await refused(relay, bad('nobody'))), 429, 'so scanning other IDs stops')
})

t.test('with the default limits, ten failures are each told 401, and the pair gets 429 from the eleventh attempt', async t => {
  const relay = await startRendezvous({ ids: ['hub-1'] })
  t.teardown(relay.close)
  const bad = `uuid:hub-1?response=${createV1Token('hub-1', 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA')}`
  const statuses: number[] = []
  for (let i = 0; i < 10; i++) statuses.push(statusOf(await refused(relay, bad)) ?? 0)
  t.same(statuses, Array(10).fill(401))
  const eleventh = await refused(relay, `uuid:hub-1?response=${createV1Token('hub-1', SECRET)}`)
  t.match(eleventh, /^HTTP\/1\.1 429 Too Many Requests\r\n/)
  t.match(eleventh, /\r\nRetry-After: 60\r\n/i)
  t.match(eleventh, /\r\nConnection: close\r\n/i)
})

t.test('a custom verifyToken replaces the default one', async t => {
  const seen: string[] = []
  const relay = await startRendezvous({
    plugin: { verifyToken: (id, token) => { seen.push(`${id}:${token}`); return token === 'letmein' } }
  })
  t.teardown(relay.close)
  const ok = await connect(relay, 'uuid:HUB-1?response=letmein')
  t.equal(statusOf(ok.text), 200)
  t.equal(statusOf(await refused(relay, 'uuid:hub-1?response=nope')), 401)
  t.equal(statusOf(await refused(relay, 'uuid:nobody?response=letmein')), 401, 'an unknown ID never reaches it')
  t.same(seen, ['hub-1:letmein', 'hub-1:nope'])
  ok.destroy()
})

t.test('a slow verifier is cut off by connectTimeout with a status', async t => {
  const relay = await startRendezvous({ plugin: { connectTimeout: 200, verifyToken: async () => await new Promise(() => {}) } })
  t.teardown(relay.close)
  const text = await refused(relay, 'uuid:hub-1?response=x')
  t.equal(statusOf(text), 408)
})

t.test('a CONNECT still being checked when the app closes gets 503 and a close, and its check, when it ends, changes nothing', async t => {
  let release!: (ok: boolean) => void
  const relay = await startRendezvous({ plugin: { retryAfter: 7, verifyToken: async () => await new Promise<boolean>(resolve => { release = resolve }) } })
  const wire = await relay.open()
  wire.write(`CONNECT uuid:hub-1?response=x HTTP/1.1\r\nHost: 127.0.0.1:${relay.port}\r\n\r\n`)
  await until(() => release !== undefined, 3000, 'the check to start')
  const started = Date.now()
  const closing = relay.close()
  await wire.untilClosed(5000)
  await closing
  t.match(wire.text, /^HTTP\/1\.1 503 Service Unavailable\r\nContent-Type: text\/plain; charset=utf-8\r\nContent-Length: 14\r\nConnection: close\r\nRetry-After: 7\r\nDate: [^\r]+ GMT\r\n\r\nshutting down\n$/)
  t.ok(wire.ended, 'an orderly close')
  t.ok(Date.now() - started < 3000, 'close() did not wait for the check')
  release(true)
  await new Promise(resolve => setTimeout(resolve, 50))
  t.equal(relay.app.rendezvous.stats().parked, 0, 'nothing parked after the close')
})

t.test('removing an ID closes its parked sockets and refuses new CONNECTs', async t => {
  const relay = await startRendezvous()
  t.teardown(relay.close)
  const hidden = await relay.park('hub-1')
  await untilParked(relay, 1)
  await relay.registry.remove('hub-1')
  await hidden.untilClosed(1000)
  t.equal(statusOf(await refused(relay, `uuid:hub-1?response=${createV1Token('hub-1', SECRET)}`)), 401)
})
