import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import Fastify from 'fastify'
import { clientErrorHandler } from '../../lib/http/client-error'
import { buildServer } from '../../lib/server/app'
import { describeExit, run } from '../helpers/cli'
import { tlsCert, tlsKey } from '../helpers/tls'

// What Node's HTTP parser refuses, before any hook of the plugin runs, is
// answered like every other refusal: status line, short body, Connection:
// close, and a close that TLS ends with its close_notify.

const PYTHON = process.env.RENDEZVOUS_PYTHON ?? 'python3'
const SCRIPT = join(__dirname, 'client-error.py')

interface Seen { answer: string, end: string, sent: number }

// Run apart, not spawnSync: the server under test shares this process's event loop.
async function rawTls (t: Test, port: number, ...chunks: string[]): Promise<Seen> {
  return await rawTlsPaced(t, port, 200, chunks)
}

async function rawTlsPaced (t: Test, port: number, gapMs: number, chunks: string[]): Promise<Seen> {
  const out = await run(t, PYTHON, [SCRIPT, String(port), String(gapMs), ...chunks])
  if (out.code !== 0) throw new Error(`${PYTHON} ${SCRIPT} exited ${describeExit(out)}: ${out.stderr}`)
  return JSON.parse(out.stdout.toString('utf8')) as Seen
}

function expectRefusal (t: Test, seen: Seen, status: string, body: string): void {
  const [head, text] = seen.answer.split('\r\n\r\n')
  t.equal(head?.split('\r\n')[0], `HTTP/1.1 ${status}`)
  t.match(head, /\r\nConnection: close(\r\n|$)/, 'Connection: close')
  t.match(head, /\r\nContent-Type: text\/plain; charset=utf-8(\r\n|$)/)
  t.equal(text, `${body}\n`, 'the short body, and nothing after it')
  t.match(head, new RegExp(`\\r\\nContent-Length: ${Buffer.byteLength(text ?? '')}(\\r\\n|$)`))
  t.equal(seen.end, 'close_notify', 'a clean TLS close')
}

const python = spawnSync(PYTHON, ['-c', 'import ssl'], { timeout: 20_000 })
t.test('serve answers what the HTTP parser refuses like every other refusal', { skip: python.status === 0 ? false : `${PYTHON} with ssl is needed` }, async t => {
  const dataDir = mkdtempSync(join(tmpdir(), 'rv-client-error-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const app = await buildServer({ dataDir, tls: { cert: tlsCert, key: tlsKey }, waitTimeout: 1000, metricsPath: false, logLevel: 'silent' })
  t.teardown(async () => { await app.close() })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port

  expectRefusal(t, await rawTls(t, port, 'connect uuid:hub-1?response=123456 HTTP/1.1\r\nHost: h\r\n\r\n'), '400 Bad Request', 'malformed request')
  expectRefusal(t, await rawTls(t, port, 'GET / HTTP/1.1\r\nHost x\r\n\r\n'), '400 Bad Request', 'malformed request')
  expectRefusal(t, await rawTls(t, port, `CONNECT uuid:${'a'.repeat(20_000)}?response=123456 HTTP/1.1\r\n\r\n`), '431 Request Header Fields Too Large', 'the request head is too large')
  // Node's parser reports the error again for each chunk that follows. The
  // answer must arrive once, and the socket must go on draining, for a close
  // with bytes unread would reset the connection before the client reads it.
  const more = await rawTlsPaced(t, port, 40, ['HELLO\r\n\r\n', ...Array(10).fill('@16384')])
  expectRefusal(t, more, '400 Bad Request', 'malformed request')
  t.equal(more.answer.split('HTTP/1.1').length, 2, 'one answer')
  t.equal(more.sent, 11, 'the client could send all it had')
  t.equal((await app.inject('/healthz')).statusCode, 200, 'the server goes on')
})

t.test('a head that does not arrive in time gets 408, then a close', async t => {
  const app = Fastify({ clientErrorHandler, requestTimeout: 300, http: { connectionsCheckingInterval: 50 } })
  t.teardown(async () => { await app.close() })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const socket = connect((app.server.address() as { port: number }).port, '127.0.0.1')
  socket.write('GET / HTTP/1.1\r\nHost: h\r\n')
  let answer = ''
  socket.setEncoding('latin1').on('data', (c: string) => { answer += c })
  await new Promise(resolve => socket.once('end', resolve))
  t.match(answer, /^HTTP\/1\.1 408 Request Timeout\r\n/)
  t.match(answer, /\r\nConnection: close\r\n/)
  t.match(answer, /\r\n\r\nthe request head did not arrive in time\n$/)
  socket.destroy()
})

t.test('a socket error that is not the parser\'s gets no HTTP answer: the socket is closed', async t => {
  const app = Fastify({ clientErrorHandler })
  t.teardown(async () => { await app.close() })
  const accepted = new Promise<Socket>(resolve => app.server.once('connection', resolve))
  await app.listen({ port: 0, host: '127.0.0.1' })
  const socket = connect((app.server.address() as { port: number }).port, '127.0.0.1')
  await new Promise(resolve => socket.once('connect', resolve))
  let answer = ''
  socket.setEncoding('latin1').on('data', (c: string) => { answer += c })
  const closed = new Promise(resolve => socket.once('close', resolve))
  const served = await accepted
  // What Node's HTTP server emits for a TCP timeout or a write into a closed connection.
  app.server.emit('clientError', Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }), served)
  await closed
  t.equal(answer, '', 'no "400 malformed request" for what was no request')
  t.ok(served.destroyed)
})
