import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { FileRegistry } from '../../lib/registry/file-registry'
import { buildServer } from '../../lib/server/app'
import { createV1Token } from '../../lib/tokens/v1'
import { openWire, statusOf, type WireClient } from '../helpers/wire'

// While serve drains (a spliced pair keeps it open), every request still
// answered on a kept-alive connection gets a real answer: 503 with
// Retry-After and Connection: close where a relay or a challenge would have
// been, and the probes' own answers, not Fastify's generic JSON 503.

t.test('requests during shutdown get 503 with Retry-After, and the probes answer as documented', async t => {
  const dataDir = await mkdtemp(join(tmpdir(), 'rv-closing-'))
  t.teardown(async () => await rm(dataDir, { recursive: true, force: true }))
  const registry = new FileRegistry({ dataDir })
  const { id, secret } = await registry.add({ id: 'hub-1' })
  await registry.close()
  const app = await buildServer({ dataDir, tls: false, waitTimeout: 1000, metricsPath: '/metrics', logLevel: 'silent', closeGracePeriod: 10_000, plugin: { retryAfter: 7 } })
  const state: { closed?: Promise<void> } = {}
  t.teardown(async () => { await (state.closed ?? app.close()) })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port

  // One pair spliced, so the drain lasts while the requests below are made.
  const hidden = await openWire(port, false)
  hidden.write(`CONNECT uuid:${id}?response=${createV1Token(id, secret)} HTTP/1.1\r\nHost: h\r\n\r\n`)
  await hidden.untilText('\r\n\r\n')
  hidden.drain()
  const client = await openWire(port, false)
  client.write(`GET /a HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="${id}"\r\n\r\n`)
  await hidden.untilText('GET /a HTTP/1.1\r\nHost: h\r\n\r\n')
  hidden.write('HTTP/1.1 204 No Content\r\n\r\n')
  await client.untilText('204')

  // Connections opened before the close; they have sent nothing yet, so the close's sweep of idle ones leaves them.
  const asks = ['GET / HTTP/1.1\r\nHost: h\r\n\r\n', 'GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="nobody"\r\n\r\n', 'GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n', 'GET /readyz HTTP/1.1\r\nHost: h\r\n\r\n']
  const conns: WireClient[] = []
  for (let i = 0; i < asks.length; i++) {
    const c = await openWire(port, false)
    t.teardown(() => c.destroy())
    conns.push(c)
  }
  state.closed = app.close()
  await new Promise(resolve => setTimeout(resolve, 100))
  t.ok(app.rendezvous.stats().spliced === 1, 'the pair still holds the drain open')
  const answers: string[] = []
  for (const [i, ask] of asks.entries()) {
    conns[i].write(ask)
    await conns[i].untilText('\r\n\r\n')
    await conns[i].until(c => /\r\n\r\n[^]*\n/.test(c.text) || c.closed, 5000, 'a body')
    answers.push(conns[i].text)
  }
  const [plain, unknown, healthz, readyz] = answers
  for (const [name, text] of [['no credential', plain], ['an unknown ID', unknown]] as const) {
    t.equal(statusOf(text), 503, `${name}: 503`)
    t.match(text, /\r\nRetry-After: 7\r\n/i, `${name}: Retry-After`)
    t.match(text, /\r\nconnection: close\r\n/i, `${name}: Connection: close`)
    t.match(text, /\r\n\r\nshutting down\n$/, `${name}: says why`)
  }
  t.equal(statusOf(healthz), 200, '/healthz: the process is alive')
  t.equal(statusOf(readyz), 503, '/readyz: not ready')
  t.match(readyz, /"reasons":\["shutting_down"\]/)
  t.match(readyz, /\r\ncache-control: no-store\r\n/i)
  hidden.destroy()
  client.destroy()
  await state.closed
})
