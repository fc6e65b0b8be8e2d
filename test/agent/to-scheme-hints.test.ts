import t from 'tap'
import { once } from 'node:events'
import http from 'node:http'
import net from 'node:net'
import tls from 'node:tls'
import { RendezvousAgent } from '../../lib/agent/agent'
import type { RelayedInfo } from '../../lib/agent/events'
import { defaultSplicePath, splicerFor } from '../../lib/relay/native-addon'
import { restoreEnvAfter } from '../helpers/fixtures'
import { otherCert, tlsCert, tlsKey } from '../helpers/tls'
import { FakeRendezvous, TEST_ID, TEST_SECRET } from './fake-rendezvous'
import { type TapTest, readAll } from './helpers'

/*
 * A --to whose scheme does not match the service, or whose certificate is
 * refused: the mobile client gets 502 as before, and the error says which
 * flag fixes it instead of OpenSSL's text or a bare "reset".
 */

const GET = 'GET /x HTTP/1.1\r\nHost: x\r\n\r\n'
const BAD_GATEWAY = /^HTTP\/1\.1 502 Bad Gateway\r\n[^]*\r\n\r\nThe hidden server's local service cannot be reached\.\n$/

interface Path { name: string, plain: boolean, js: boolean }
const native = splicerFor(defaultSplicePath()) !== undefined
const PATHS: Path[] = [
  { name: 'TLS rendezvous', plain: false, js: false },
  { name: 'plain rendezvous, RENDEZVOUS_SPLICE=js', plain: true, js: true },
  { name: `plain rendezvous, ${native ? 'native' : 'JavaScript (no addon)'} path`, plain: true, js: false }
]

async function listening (t: TapTest, server: net.Server, host = '127.0.0.1'): Promise<number> {
  server.listen(0, host)
  await once(server, 'listening')
  t.teardown(() => { server.close() })
  return (server.address() as net.AddressInfo).port
}

// A TLS service as Node writes one: a plain request gets a FIN without a byte (OpenSSL sends no alert for it).
async function tlsService (t: TapTest, host = '127.0.0.1'): Promise<number> {
  const server = tls.createServer({ key: tlsKey, cert: tlsCert }, (s) => { s.on('error', () => {}); s.end('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\ntls') })
  server.on('tlsClientError', () => {})
  return await listening(t, server, host)
}

async function relayOnce (t: TapTest, path: Path, to: string, trust: { toCa?: Buffer, toInsecure?: boolean } = {}): Promise<{ answer: string, info: RelayedInfo, errors: Error[] }> {
  if (path.js) {
    restoreEnvAfter(t, 'RENDEZVOUS_SPLICE')
    process.env.RENDEZVOUS_SPLICE = 'js'
  }
  const fake = await new FakeRendezvous({ id: TEST_ID, secret: TEST_SECRET, plain: path.plain }).listen()
  t.teardown(() => fake.close())
  const agent = new RendezvousAgent({ url: fake.url, id: TEST_ID, secret: TEST_SECRET, to, ...trust, ca: path.plain ? undefined : tlsCert, pool: 1 })
  const errors: Error[] = []
  agent.on('error', (err) => errors.push(err))
  t.teardown(() => agent.close())
  await agent.start()
  await fake.waitParked(1)
  const relayed = new Promise<RelayedInfo>((resolve) => agent.once('relayed', resolve))
  const answer = (await readAll(fake.take(GET))).toString('latin1')
  return { answer, info: await relayed, errors }
}

for (const path of PATHS) {
  t.test(`${path.name}: an http:// --to for a TLS service says it speaks TLS`, async (t) => {
    const port = await tlsService(t)
    const { answer, info, errors } = await relayOnce(t, path, `http://127.0.0.1:${port}`)
    t.match(answer, BAD_GATEWAY)
    t.equal(info.answered, 502)
    t.equal((info.error as { code?: string }).code, 'FST_RENDEZVOUS_AGENT_LOCAL_CLOSED', 'still the code of a service that dropped the request')
    t.equal(info.error!.message, `the local service 127.0.0.1:${port} closed the connection before it answered; it speaks TLS: use --to https://127.0.0.1:${port} (the library's to option)`)
    t.equal(errors[0], info.error, 'the error event carries the same')
  })
}

t.test('a plain service that resets the request is not called TLS', async (t) => {
  const port = await listening(t, net.createServer((s) => { s.on('error', () => {}); s.once('data', () => s.resetAndDestroy()) }))
  const { answer, info } = await relayOnce(t, PATHS[1]!, `http://127.0.0.1:${port}`)
  t.match(answer, BAD_GATEWAY)
  t.equal(info.error!.message, `the local service 127.0.0.1:${port} reset the connection before it answered`)
})

t.test('a plain service that closes at once is not called TLS', async (t) => {
  const port = await listening(t, net.createServer((s) => { s.on('error', () => {}); s.end() }))
  const { answer, info } = await relayOnce(t, PATHS[0]!, `http://127.0.0.1:${port}`)
  t.match(answer, BAD_GATEWAY)
  t.equal(info.error!.message, `the local service 127.0.0.1:${port} closed the connection before it answered`)
})

t.test('an https:// --to for a plain HTTP service says it does not speak TLS', async (t) => {
  const port = await listening(t, http.createServer((_req, res) => res.end('plain')))
  const { answer, info } = await relayOnce(t, PATHS[1]!, `https://127.0.0.1:${port}`)
  t.match(answer, BAD_GATEWAY)
  t.match(info.error, {
    code: 'FST_RENDEZVOUS_AGENT_LOCAL_NOT_TLS',
    message: `the local service 127.0.0.1:${port} does not speak TLS: if it is plain HTTP, use --to http://127.0.0.1:${port} (the library's to option)`,
    cause: { code: 'ERR_SSL_WRONG_VERSION_NUMBER' }
  })
})

const CERTIFICATES: Array<[string, { toCa?: Buffer }, string, RegExp]> = [
  ['self-signed, no --to-ca', {}, '127.0.0.1', /^the local service 127\.0\.0\.1:\d+ presented a certificate this agent rejects \(DEPTH_ZERO_SELF_SIGNED_CERT\): trust it with --to-ca FILE, its certificate or its CA \(toCa\), or skip the check with --to-insecure \(toInsecure\)$/],
  ['not the --to-ca one', { toCa: otherCert }, '127.0.0.1', /^the local service 127\.0\.0\.1:\d+ presented a certificate this agent rejects \(\w+\): it is not a --to-ca certificate nor signed by one: give the right one, or skip the check with --to-insecure \(toInsecure\)$/],
  ['for another name', { toCa: tlsCert }, '127.0.0.2', /^the local service 127\.0\.0\.2:\d+ presented a certificate this agent rejects \(ERR_TLS_CERT_ALTNAME_INVALID\): it does not carry the name in --to \(127\.0\.0\.2\): use a name it carries, or skip the check with --to-insecure \(toInsecure\)$/]
]

for (const [what, trust, host, message] of CERTIFICATES) {
  t.test(`an https:// --to whose certificate is rejected (${what}) names the flags`, async (t) => {
    const port = await tlsService(t, host)
    const { answer, info } = await relayOnce(t, PATHS[1]!, `https://${host}:${port}`, trust)
    t.match(answer, BAD_GATEWAY)
    t.match(info.error, { code: 'FST_RENDEZVOUS_AGENT_LOCAL_CERTIFICATE', message })
  })
}

t.test('the same service with --to-ca is relayed as before', async (t) => {
  const port = await tlsService(t)
  const { answer, info } = await relayOnce(t, PATHS[1]!, `https://127.0.0.1:${port}`, { toCa: tlsCert })
  t.equal(answer, 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\ntls')
  t.equal(info.error, undefined)
})
