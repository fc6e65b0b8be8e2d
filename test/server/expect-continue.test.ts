import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { FileRegistry } from '../../lib/registry/file-registry'
import { buildServer } from '../../lib/server/app'
import { openWire, statusOf } from '../helpers/wire'

// serve sends no 100 Continue of its own: a request that is challenged,
// names an unknown ID or is a probe gets its final answer straight away,
// before the client has sent the body it announced.

t.test('serve answers Expect: 100-continue with the final answer, no 100 first', async t => {
  const dataDir = await mkdtemp(join(tmpdir(), 'rv-expect-'))
  t.teardown(async () => await rm(dataDir, { recursive: true, force: true }))
  const registry = new FileRegistry({ dataDir })
  await registry.add({ id: 'hub-1' })
  await registry.close()
  const app = await buildServer({ dataDir, tls: false, waitTimeout: 300, metricsPath: '/metrics', logLevel: 'silent' })
  t.teardown(async () => await app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port

  const cases: Array<[string, string, number]> = [
    ['no credential: the challenge', '', 401],
    ['an unknown ID', 'Authorization: Digest username="nobody"\r\n', 404],
    ['a probe', '', 200]
  ]
  for (const [name, auth, status] of cases) {
    const c = await openWire(port, false)
    const line = status === 200 ? 'GET /healthz' : 'POST /upload'
    c.write(`${line} HTTP/1.1\r\nHost: h\r\n${auth}Content-Length: 1048576\r\nExpect: 100-continue\r\n\r\n`)
    await c.untilText('\r\n\r\n')
    t.equal(statusOf(c.text), status, `${name}: ${c.text.split('\r\n')[0]}`)
    t.notMatch(c.text, /^HTTP\/1\.1 100/, `${name}: no 100 Continue`)
    c.destroy()
  }
})
