import t from 'tap'
import { X509Certificate } from 'node:crypto'
import { once } from 'node:events'
import { generate } from 'selfsigned'
import { RendezvousAgent, type RendezvousCertificateError } from '../../lib/agent/agent'
import { otherCert, otherKey, tlsCert, tlsKey } from '../helpers/tls'
import { FakeRendezvous, TEST_ID, TEST_SECRET, type FakeOptions } from './fake-rendezvous'
import { type TapTest, echoServer } from './helpers'
import { until } from '../helpers/until'

const DAY = 86_400_000

/** A self-signed certificate for 127.0.0.1, valid from `from` to `to`. */
async function certificate (from: number, to: number): Promise<{ cert: Buffer, key: Buffer }> {
  const pems = await generate([{ name: 'commonName', value: 'test rendezvous' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: new Date(from),
    notAfterDate: new Date(to),
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] }]
  } as Parameters<typeof generate>[1])
  return { cert: Buffer.from(pems.cert), key: Buffer.from(pems.private) }
}

const fingerprint = (pem: Buffer): string => new X509Certificate(pem).fingerprint256

async function fakeWith (t: TapTest, extra: Partial<FakeOptions>): Promise<FakeRendezvous> {
  const fake = await new FakeRendezvous({ id: TEST_ID, secret: TEST_SECRET, ...extra }).listen()
  t.teardown(() => fake.close())
  return fake
}

async function firstAttempt (t: TapTest, fake: FakeRendezvous, ca: Buffer | undefined): Promise<RendezvousCertificateError> {
  const echo = await echoServer()
  t.teardown(() => echo.server.close())
  const agent = new RendezvousAgent({ url: fake.url, id: TEST_ID, secret: TEST_SECRET, to: echo.url, ca, pool: 2 })
  const fatal = once(agent, 'fatal')
  const err = await agent.start().then(() => { throw new Error('parked with a bad certificate') }, (e: RendezvousCertificateError) => e)
  t.equal((await fatal)[0], err, 'the same error is the fatal event')
  t.equal(fake.connects.length, 0, 'no CONNECT, so no token, reached the server')
  t.equal(agent.stats.attempts, 1, 'fatal on the first attempt: no retries')
  t.equal(err.code, 'RENDEZVOUS_CERTIFICATE_REJECTED')
  t.equal(err.message.split('\n').length, 1, 'one line')
  return err
}

t.test('unknown issuer: says so, with the presented and the expected fingerprints', async (t) => {
  const fake = await fakeWith(t, { key: otherKey, cert: otherCert })
  const err = await firstAttempt(t, fake, tlsCert)
  t.equal(err.problem, 'unknown_issuer')
  t.match(err.message, /unknown issuer/)
  t.match(err.message, /if the server made a new certificate, copy the new one/)
  t.equal(err.presented, fingerprint(otherCert))
  t.same(err.expected, [fingerprint(tlsCert)])
  t.ok(err.message.includes(`presented SHA-256 ${fingerprint(otherCert)}, expected ${fingerprint(tlsCert)} (--ca)`), err.message)
})

t.test('unknown issuer without a ca: advises --ca', async (t) => {
  const fake = await fakeWith(t, {})
  const err = await firstAttempt(t, fake, undefined)
  t.equal(err.problem, 'unknown_issuer')
  t.match(err.message, /give the rendezvous certificate or its CA with --ca FILE/)
  t.match(err.message, /expected a CA this system trusts/)
})

t.test('name mismatch: names what the certificate carries', async (t) => {
  const fake = await fakeWith(t, { host: '127.0.0.2' })
  const err = await firstAttempt(t, fake, tlsCert)
  t.equal(err.problem, 'name_mismatch')
  t.match(err.message, /does not name 127\.0\.0\.2 \(it names [^)]*IP Address:127\.0\.0\.1/)
  // --tls-name only shapes the certificate serve generates: the advice must hold for a --tls-cert too.
  t.match(err.message, /or have the server present one that names it \(serve --tls-name 127\.0\.0\.2 when serve generates its certificate; a --tls-cert of its own must carry the name\)/)
  t.equal(err.presented, fingerprint(tlsCert))
})

t.test('expired', async (t) => {
  const { cert, key } = await certificate(Date.now() - 10 * DAY, Date.now() - DAY)
  const fake = await fakeWith(t, { key, cert })
  const err = await firstAttempt(t, fake, cert)
  t.equal(err.problem, 'expired')
  t.match(err.message, /expired on .*the server must renew it/)
  t.equal(err.presented, fingerprint(cert))
})

t.test('not yet valid: tells to check the clock', async (t) => {
  const { cert, key } = await certificate(Date.now() + DAY, Date.now() + 10 * DAY)
  const fake = await fakeWith(t, { key, cert })
  const err = await firstAttempt(t, fake, cert)
  t.equal(err.problem, 'not_yet_valid')
  t.match(err.message, /not valid before .*: check this machine's clock, it reads 20\d\d-/)
  t.ok(err.message.includes(`presented SHA-256 ${fingerprint(cert)}, expected ${fingerprint(cert)} (--ca)`))
})

t.test('after a connection worked, a rejected certificate is retried, not fatal', async (t) => {
  const first = await fakeWith(t, {})
  const echo = await echoServer()
  t.teardown(() => echo.server.close())
  const agent = new RendezvousAgent({ url: first.url, id: TEST_ID, secret: TEST_SECRET, to: echo.url, ca: tlsCert, pool: 1, backoffMax: 100 })
  const errors: Error[] = []
  agent.on('error', (err) => errors.push(err))
  let fatal = false
  agent.on('fatal', () => { fatal = true })
  t.teardown(() => agent.close())
  await agent.start()
  await first.close()
  const second = await fakeWith(t, { key: otherKey, cert: otherCert, port: first.port })
  await until(() => errors.filter((e) => (e as RendezvousCertificateError).problem === 'unknown_issuer').length >= 2, 5000, 'two rejected attempts')
  t.notOk(fatal)
  t.equal(second.connects.length, 0)
  await second.close()
  const third = await fakeWith(t, { key: tlsKey, cert: tlsCert, port: first.port })
  await third.waitParked(1, 5000)
})

t.test('a ca that holds no certificate is refused up front', async (t) => {
  const base = { url: 'https://127.0.0.1:1', id: TEST_ID, secret: TEST_SECRET, to: 'http://127.0.0.1:2' }
  t.throws(() => new RendezvousAgent({ ...base, ca: tlsKey }), /ca holds a private key, not a certificate/)
  t.throws(() => new RendezvousAgent({ ...base, ca: 'garbage' }), /ca holds no PEM certificate/)
})
