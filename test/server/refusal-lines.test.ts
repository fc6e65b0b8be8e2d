import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import t from 'tap'
import { buildServer } from '../../lib/server/app'
import { FileRegistry } from '../../lib/registry/file-registry'
import { openWire } from '../helpers/wire'

// An unknown ID's 404 is answered through Fastify (the challenge hook), every
// other mobile-side refusal before Fastify sees the request. Their log lines
// must still look alike: grep by plugin, tie by a reqId of the same form.

interface Line { msg: string, plugin?: string, reqId?: string, outcome?: string, [key: string]: unknown }

t.test('the 404 of an unknown ID logs like the other mobile-side refusals', async t => {
  const dataDir = mkdtempSync(join(tmpdir(), 'rv-refusal-lines-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const registry = new FileRegistry({ dataDir })
  await registry.add({ id: 'hub-1' })
  await registry.close()
  let raw = ''
  const logStream = new Writable({ write (chunk, _e, cb) { raw += String(chunk); cb() } })
  const app = await buildServer({ dataDir, tls: false, waitTimeout: 300, metricsPath: false, logLevel: 'debug', logStream })
  t.teardown(async () => { await app.close() })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port

  for (const id of ['nobody', 'hub-1']) {
    const client = await openWire(port, false)
    client.write(`GET /x HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="${id}"\r\n\r\n`)
    await client.untilText('\r\n\r\n')
    t.match(client.text, id === 'hub-1' ? /^HTTP\/1\.1 503 / : /^HTTP\/1\.1 404 /)
    client.destroy()
  }
  await app.close()

  const lines = raw.trim().split('\n').map(l => JSON.parse(l) as Line)
  const unknown = lines.find(l => l.msg === 'rendezvous request refused' && l.outcome === 'unknown_id')
  const waited = lines.find(l => l.msg === 'rendezvous request refused' && l.outcome === 'no_hidden_server')
  t.ok(unknown !== undefined && waited !== undefined, 'both refusals are logged')
  // A name that is no ID is logged only as its hash: it may be an app's own credential.
  const shape = (l: Line | undefined): Record<string, unknown> => ({ plugin: l?.plugin, reqId: /^[0-9a-f]{16}$/.test(String(l?.reqId)), keys: Object.keys(l ?? {}).map(k => k === 'idHash' ? 'id' : k).sort() })
  t.same(shape(unknown), shape(waited), 'the same fields: plugin, a hex reqId, side, address, method, url, id (idHash for the unknown one), outcome, status')
  t.equal(unknown?.idHash, createHash('sha256').update('nobody').digest('hex').slice(0, 12), 'the 404 names the ID it did not know by its hash')
  t.notOk(raw.includes('nobody'), 'and never as it came')
  t.equal(unknown?.plugin, 'rendezvous')
  t.ok(lines.some(l => l.msg === 'incoming request' && l.reqId === unknown?.reqId), 'and Fastify\'s own lines for that request carry the same reqId')
})
