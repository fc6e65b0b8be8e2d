import t from 'tap'
import type { FastifyServerOptions } from 'fastify'
import { X509Certificate } from 'node:crypto'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generate } from 'selfsigned'
import { RendezvousAgent, type RendezvousCertificateError } from '../../lib/agent/agent'
import { loadCertificate } from '../../lib/server/certificate'
import { buildProblem, startCli } from '../helpers/cli'
import { SECRET } from '../helpers/fixtures'
import { tlsCert, tlsKey } from '../helpers/tls'
import { startRendezvous, untilParked, type TestRendezvous } from '../helpers/rendezvous'
import { FakeRendezvous } from './fake-rendezvous'
import { type TapTest, echoServer, readAll } from './helpers'

// A server's certificate replaced (renewal, a new data dir, one per node of a
// cluster): agents trust the old and the new one from one --ca file. The
// certificates serve generates all have the same subject (CN=rendezvous) and
// no key identifiers, which left OpenSSL to try only one of them as the
// anchor, and refuse a server presenting the other. And serve wrote them
// without a final newline, so `cat old.pem new.pem` glued the second to the
// first's END line, where OpenSSL's PEM reader stopped.

interface Pair { cert: Buffer, key: Buffer }

const dir = mkdtempSync(join(tmpdir(), 'rendezvous-ca-bundle-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

/**
 * A certificate made as `rendezvous serve` makes one in a fresh data dir, its
 * file without the final newline, as serve wrote it until it added one (data
 * dirs made then keep theirs).
 */
async function served (name: string): Promise<Pair> {
  const { cert, key } = await loadCertificate({ dataDir: join(dir, name), host: '127.0.0.1' })
  return { cert: Buffer.from(cert.toString().trimEnd()), key }
}

const glued = (...certs: Buffer[]): Buffer => Buffer.concat(certs)
const lines = (...certs: Buffer[]): Buffer => Buffer.from(certs.map(String).join('\n'))

const fingerprint = (pem: Buffer): string => new X509Certificate(pem).fingerprint256

async function relayWith (t: TapTest, pair: Pair): Promise<TestRendezvous> {
  const relay = await startRendezvous({ tls: true, fastify: { https: pair } as FastifyServerOptions })
  t.teardown(() => relay.close())
  return relay
}

function agentFor (t: TapTest, url: string, ca: Buffer | Buffer[]): RendezvousAgent {
  const agent = new RendezvousAgent({ url, id: 'hub-1', secret: SECRET, to: 'http://127.0.0.1:9', ca, pool: 1, backoffMax: 100 })
  t.teardown(() => agent.close())
  return agent
}

async function parks (t: TapTest, pair: Pair, ca: Buffer | Buffer[], label: string): Promise<void> {
  const relay = await relayWith(t, pair)
  const agent = agentFor(t, `https://127.0.0.1:${relay.port}`, ca)
  const err = await agent.start().then(() => undefined, (e: RendezvousCertificateError) => e)
  t.equal(err?.problem, undefined, `${label}: not refused (${err?.message ?? 'ok'})`)
  await untilParked(relay, 1, 10_000)
  t.pass(`${label}: parked`)
  await agent.close()
  await relay.close()
}

async function refused (t: TapTest, url: string, ca: Buffer | Buffer[]): Promise<RendezvousCertificateError> {
  const agent = agentFor(t, url, ca)
  const err = await agent.start().then(() => undefined, (e: RendezvousCertificateError) => e)
  if (err === undefined) throw new Error('parked with a certificate that should be refused')
  t.equal(err.code, 'RENDEZVOUS_CERTIFICATE_REJECTED')
  t.equal(agent.stats.parked, 0)
  return err
}

t.test('old and new certificates of the same subject in one bundle: either one is accepted, in either order', async (t) => {
  const old = await served('old')
  const renewed = await served('new')
  const a = new X509Certificate(old.cert)
  const b = new X509Certificate(renewed.cert)
  t.equal(a.subject, b.subject, 'same subject')
  t.equal(a.subjectAltName, b.subjectAltName, 'same names')
  t.not(a.fingerprint256, b.fingerprint256, 'different certificates')
  t.not(a.publicKey.export({ type: 'spki', format: 'der' }).toString('hex'), b.publicKey.export({ type: 'spki', format: 'der' }).toString('hex'), 'different keys')
  t.match(glued(old.cert, renewed.cert).toString(), /-----END CERTIFICATE----------BEGIN CERTIFICATE-----/, 'cat glues them')
  for (const [name, pair] of [['old', old], ['new', renewed]] as const) {
    await parks(t, pair, glued(old.cert, renewed.cert), `${name} presented, cat old new`)
    await parks(t, pair, glued(renewed.cert, old.cert), `${name} presented, cat new old`)
    await parks(t, pair, lines(old.cert, renewed.cert), `${name} presented, old and new on their own lines`)
    await parks(t, pair, lines(renewed.cert, old.cert), `${name} presented, new and old on their own lines`)
    await parks(t, pair, [old.cert, renewed.cert], `${name} presented, ca as an array`)
  }
})

t.test('a certificate of the same subject that is not in the bundle is refused', async (t) => {
  const old = await served('only-old')
  const renewed = await served('only-new')
  const stranger = await served('stranger')
  const relay = await relayWith(t, renewed)
  const url = `https://127.0.0.1:${relay.port}`
  const alone = await refused(t, url, old.cert)
  t.equal(alone.problem, 'unknown_issuer', 'only the old one trusted: the new one is refused')
  t.equal(alone.presented, fingerprint(renewed.cert))
  t.same(alone.expected, [fingerprint(old.cert)])
  await relay.close()

  const impostor = await relayWith(t, stranger)
  const err = await refused(t, `https://127.0.0.1:${impostor.port}`, glued(old.cert, renewed.cert))
  t.equal(err.problem, 'unknown_issuer', 'a third certificate with the same subject and names is refused')
  t.equal(err.presented, fingerprint(stranger.cert))
  t.same(err.expected, [fingerprint(old.cert), fingerprint(renewed.cert)])
  t.equal(impostor.app.rendezvous.stats().parked, 0)
})

t.test('a certificate in the bundle is still checked for the name it is dialled by', async (t) => {
  const old = await served('name-old')
  const renewed = await served('name-new')
  // Serve's certificate names localhost, 127.0.0.1 and ::1; not 127.0.0.2.
  const fake = await new FakeRendezvous({ id: 'hub-1', secret: SECRET, host: '127.0.0.2', ...renewed }).listen()
  t.teardown(() => fake.close())
  const err = await refused(t, fake.url, glued(old.cert, renewed.cert))
  t.equal(err.problem, 'name_mismatch')
  t.equal(err.presented, fingerprint(renewed.cert))
  t.equal(fake.connects.length, 0, 'no CONNECT, so no token, reached it')
})

t.test('an expired certificate in the bundle is still refused as expired', async (t) => {
  const current = await served('dates-current')
  const day = 86_400_000
  const pems = await generate([{ name: 'commonName', value: 'rendezvous' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: new Date(Date.now() - 10 * day),
    notAfterDate: new Date(Date.now() - day),
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] }]
  } as Parameters<typeof generate>[1])
  const expired = { cert: Buffer.from(pems.cert), key: Buffer.from(pems.private) }
  t.equal(new X509Certificate(expired.cert).subject, new X509Certificate(current.cert).subject)
  const relay = await relayWith(t, expired)
  const err = await refused(t, `https://127.0.0.1:${relay.port}`, glued(current.cert, expired.cert))
  t.equal(err.problem, 'expired')
  t.equal(err.presented, fingerprint(expired.cert))
})

t.test('rendezvous agent --ca FILE with the old and the new certificate parks against the new one', async (t) => {
  const problem = buildProblem(t)
  if (problem !== undefined) return t.fail(problem)
  const old = await served('cli-old')
  const renewed = await served('cli-new')
  const bundle = join(dir, 'both.pem')
  writeFileSync(bundle, glued(old.cert, renewed.cert))
  const echo = await echoServer()
  t.teardown(() => echo.server.close())
  const relay = await relayWith(t, renewed)
  const agent = startCli(t, ['agent', '--server', `https://127.0.0.1:${relay.port}`, '--id', 'hub-1', '--secret', SECRET, '--to', echo.url, '--ca', bundle, '--pool', '1'])
  const died = agent.exited.then(exit => { throw new Error(`the agent exited (${String(exit.code)}): ${agent.output()}`) })
  died.catch(() => {})
  await Promise.race([untilParked(relay, 1, 15_000), died])
  t.pass('parked')
  await agent.stop()
})

t.test('toCa for an https backend: old and new certificates of the same subject in one bundle', async (t) => {
  const old = await served('backend-old')
  const renewed = await served('backend-new')
  const stranger = await served('backend-stranger')
  const fake = await new FakeRendezvous({ id: 'hub-1', secret: SECRET }).listen()
  t.teardown(() => fake.close())
  const request = 'GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
  for (const [name, pair, status] of [['old', old, 200], ['new', renewed, 200], ['another', stranger, 502]] as const) {
    const backend = https.createServer(pair, (_req, res) => res.end('backend'))
    backend.listen(0, '127.0.0.1')
    await once(backend, 'listening')
    t.teardown(() => backend.close())
    const agent = new RendezvousAgent({ url: fake.url, id: 'hub-1', secret: SECRET, ca: tlsCert, to: `https://127.0.0.1:${(backend.address() as AddressInfo).port}`, toCa: glued(old.cert, renewed.cert), pool: 1 })
    t.teardown(() => agent.close())
    await agent.start()
    await fake.waitParked(1)
    const answer = (await readAll(fake.take(request))).toString()
    t.match(answer, new RegExp(`^HTTP/1\\.1 ${status} `), `${name} certificate presented: ${status}`)
    await agent.close()
    backend.close()
  }
})

t.test('a toCa that holds no certificate is refused up front', async (t) => {
  const base = { url: 'https://127.0.0.1:1', id: 'hub-1', secret: SECRET, to: 'https://127.0.0.1:2' }
  t.throws(() => new RendezvousAgent({ ...base, toCa: tlsKey }), { code: 'FST_RENDEZVOUS_AGENT_BAD_OPTION', option: 'toCa', message: /toCa holds a private key, not a certificate/ })
  t.throws(() => new RendezvousAgent({ ...base, toCa: 'garbage' }), { option: 'toCa', message: /toCa holds no PEM certificate/ })
})
