import t from 'tap'
import { connect, type Socket } from 'node:net'
import { parseServeArgs } from '../../lib/cli/serve-args'
import { buildServer } from '../../lib/server/app'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

t.test('serve flags for the hardening limits', async t => {
  t.same(parseServeArgs([]).limits, {}, 'unset flags keep the plugin defaults')
  t.same(parseServeArgs([
    '--splice-idle-timeout', '90', '--handshake-timeout', '2.5', '--max-connections-per-address', '50', '--max-spliced', '0'
  ]).limits, { spliceIdleTimeout: 90_000, handshakeTimeout: 2_500, maxConnectionsPerAddress: 50, maxSpliced: 0 })
  t.same(parseServeArgs(['--splice-idle-timeout', '0']).limits, { spliceIdleTimeout: 0 }, '0 turns the idle timeout off')
  for (const [flag, value] of [['--max-spliced', '-1'], ['--max-spliced', '1.5'], ['--max-connections-per-address', 'x'], ['--splice-idle-timeout', 'soon'], ['--handshake-timeout', '-2']]) {
    t.throws(() => parseServeArgs([flag, value]), { message: new RegExp(`^${flag}`) }, `${flag} ${value}`)
  }
})

t.test('buildServer hands the limits to the plugin: a connection past the per-address cap is closed', async t => {
  const dataDir = mkdtempSync(join(tmpdir(), 'rv-limits-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const app = await buildServer({ dataDir, tls: false, waitTimeout: 1000, metricsPath: false, logLevel: 'silent', limits: { maxSpliced: 0, maxConnectionsPerAddress: 2 } })
  t.teardown(async () => { await app.close() })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port
  const open = await Promise.all([0, 1, 2].map(async () => await new Promise<Socket>(resolve => {
    const s = connect({ port, host: '127.0.0.1' }, () => resolve(s))
    s.on('error', () => {})
  })))
  await new Promise<void>(resolve => open[2].once('close', () => resolve()))
  t.pass('the third connection from one address was closed')
  for (const s of open) s.destroy()
})
