import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { FileRegistry } from '../../lib/registry/file-registry'
import { buildServer, closeServer } from '../../lib/server/app'
import { openWire, statusOf } from '../helpers/wire'
import { dualStackLocalhost } from '../helpers/dual-localhost'

/*
 * `serve --host localhost` binds 127.0.0.1 and ::1 where localhost names
 * both: Fastify makes a second server for the second address once it
 * listens. serve's own handling (no 100 Continue before its final answers,
 * the last-resort handle on sockets at shutdown) was on the first only.
 * The 100 shows it.
 */

dualStackLocalhost(fn => { t.teardown(fn) })

t.test('serve on localhost: both addresses answer Expect with the final answer, no 100 first', async t => {
  const dataDir = await mkdtemp(join(tmpdir(), 'rv-second-'))
  t.teardown(async () => await rm(dataDir, { recursive: true, force: true }))
  const registry = new FileRegistry({ dataDir })
  await registry.add({ id: 'hub-1' })
  await registry.close()
  const app = await buildServer({ dataDir, tls: false, waitTimeout: 300, metricsPath: false, logLevel: 'silent', closeGracePeriod: 100 })
  await app.listen({ port: 0, host: 'localhost' })
  const port = (app.server.address() as { port: number }).port
  t.equal(app.addresses().length, 2, 'two servers')
  for (const host of ['127.0.0.1', '::1']) {
    const c = await openWire(port, false, false, host)
    c.write('POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 1048576\r\nExpect: 100-continue\r\n\r\n')
    await c.untilText('\r\n\r\n')
    t.equal(statusOf(c.text), 401, `${host}: ${c.text.split('\r\n')[0]}`)
    c.destroy()
  }
  await closeServer(app, 2000)
})
