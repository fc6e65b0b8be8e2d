import t from 'tap'
import { once } from 'node:events'
import { RendezvousAgent, type RendezvousCertificateError } from '../../lib/agent/agent'
import { otherCert, otherKey, tlsCert } from '../helpers/tls'
import { FakeRendezvous, TEST_ID, TEST_SECRET, type FakeOptions } from './fake-rendezvous'
import { type TapTest, echoServer, sleep } from './helpers'

async function fakeWith (t: TapTest, extra: Partial<FakeOptions>): Promise<FakeRendezvous> {
  const fake = await new FakeRendezvous({ id: TEST_ID, secret: TEST_SECRET, ...extra }).listen()
  t.teardown(() => fake.close())
  return fake
}

// A certificate refused on the very first attempt is a setup mistake: the agent says what and stops.
async function refused (t: TapTest, fake: FakeRendezvous, opts: { url?: string, ca?: Buffer }, code: RegExp): Promise<void> {
  const echo = await echoServer()
  t.teardown(() => echo.server.close())
  const agent = new RendezvousAgent({ url: opts.url ?? fake.url, id: TEST_ID, secret: TEST_SECRET, to: echo.url, ca: opts.ca, pool: 2, backoffMax: 100 })
  const closed = once(agent, 'close')
  const err = await agent.start().then(() => undefined, (e: RendezvousCertificateError) => e)
  await closed
  t.ok(fake.tcp >= 1, 'the agent did dial')
  t.equal(fake.connects.length, 0, 'no CONNECT, so no token, ever reached the server')
  t.equal(err?.code, 'RENDEZVOUS_CERTIFICATE_REJECTED')
  t.match(err?.reason, code)
  t.equal(agent.stats.parked, 0)
}

t.test('a certificate from another key is refused before the CONNECT', async (t) => {
  const fake = await fakeWith(t, { key: otherKey, cert: otherCert })
  await refused(t, fake, { ca: tlsCert }, /CERT|SIGNATURE/)
})

t.test('a self-signed certificate is refused without a ca', async (t) => {
  const fake = await fakeWith(t, {})
  await refused(t, fake, {}, /SELF_SIGNED|UNABLE_TO_VERIFY/)
})

t.test('a certificate for another name is refused', async (t) => {
  const fake = await fakeWith(t, { host: '127.0.0.2' })
  await refused(t, fake, { ca: tlsCert }, /ERR_TLS_CERT_ALTNAME_INVALID/)
})

t.test('the right ca, by IP and by host name (SNI)', async (t) => {
  const fake = await fakeWith(t, {})
  const echo = await echoServer()
  t.teardown(() => echo.server.close())
  for (const url of [fake.url, `https://localhost:${fake.port}`]) {
    const agent = new RendezvousAgent({ url, id: TEST_ID, secret: TEST_SECRET, to: echo.url, ca: tlsCert, pool: 1 })
    await agent.start()
    t.equal(agent.stats.parked, 1, url)
    await agent.close()
  }
  t.equal(fake.connects[1]!.host, `localhost:${fake.port}`)
})

t.test('insecure accepts any certificate, and says so loudly', async (t) => {
  const fake = await fakeWith(t, { key: otherKey, cert: otherCert })
  const echo = await echoServer()
  t.teardown(() => echo.server.close())
  const agent = new RendezvousAgent({ url: fake.url, id: TEST_ID, secret: TEST_SECRET, to: echo.url, insecure: true, pool: 1 })
  const warnings: string[] = []
  agent.on('warning', (w) => warnings.push(w))
  await agent.start()
  t.teardown(() => agent.close())
  t.equal(agent.stats.parked, 1)
  t.match(warnings, [/verification is OFF/])
})

t.test('insecure without a warning listener goes to process warnings', async (t) => {
  const fake = await fakeWith(t, {})
  const echo = await echoServer()
  t.teardown(() => echo.server.close())
  const agent = new RendezvousAgent({ url: fake.url, id: TEST_ID, secret: TEST_SECRET, to: echo.url, insecure: true, pool: 1 })
  const warned = once(process, 'warning')
  agent.start().catch(() => {})
  t.teardown(() => agent.close())
  const [w] = await warned as [Error & { code?: string }]
  t.equal(w.code, 'RENDEZVOUS_INSECURE_TLS')
  await sleep(10)
})

t.test('options are checked up front', async (t) => {
  const base = { url: 'https://r.example', id: TEST_ID, secret: TEST_SECRET, to: 'http://127.0.0.1:8080' }
  t.throws(() => new RendezvousAgent({ ...base, url: 'ftp://r.example' }), /https:\/\/ or http:\/\//)
  t.throws(() => new RendezvousAgent({ ...base, id: 'has space' }), /id must be/)
  t.throws(() => new RendezvousAgent({ ...base, secret: 'SHORT' }), /secret must be/)
  t.throws(() => new RendezvousAgent({ ...base, to: undefined }), /exactly one of to and server/)
  t.throws(() => new RendezvousAgent({ ...base, to: 'ftp://127.0.0.1:1' }), /to must be an http:\/\/ or https:\/\//)
  t.throws(() => new RendezvousAgent({ ...base, pool: 0 }), /pool must be/)
  t.throws(() => new RendezvousAgent({ ...base, insecure: true, ca: tlsCert }), /contradict/)
  t.throws(() => new RendezvousAgent({ ...base, toInsecure: true }), { option: 'toInsecure', message: /toInsecure applies only to an https:\/\/ local service, not http:\/\// })
  t.throws(() => new RendezvousAgent({ ...base, toCa: tlsCert }), { option: 'toCa', message: /toCa applies only to an https:\/\/ local service/ })
  t.doesNotThrow(() => new RendezvousAgent({ ...base, secret: TEST_SECRET.toLowerCase().replace(/(.{4})/g, '$1 ') + '====' }), 'secrets are forgiven case, spaces and padding')
})
