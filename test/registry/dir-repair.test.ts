import t from 'tap'
import { chmod } from 'node:fs/promises'
import { Writable } from 'node:stream'
import { join } from 'node:path'
import { FileRegistry } from '../../lib/index'
import { startRendezvous as startRelay, type TestRendezvous as Relay } from '../helpers/rendezvous'
import { SECRET } from '../helpers/fixtures'
import { until } from '../helpers/until'

// A refusal of the data dir's mode is repaired on the directory, not on
// ids.json: the server must notice that too, within the poll it documents.

const skip = process.platform === 'win32' ? 'no POSIX modes' : false

async function readyStatus (relay: Relay): Promise<number> {
  return (await fetch(`http://127.0.0.1:${relay.port}/readyz`)).status
}

t.test('a data dir refused for its mode is used again once chmod 700 fixes it, though ids.json stays the same', { skip }, async t => {
  const dir = t.testdir()
  await chmod(dir, 0o700)
  const file = join(dir, 'ids.json')
  // The default poll, as serve runs it.
  const registry = new FileRegistry({ dataDir: dir })
  await registry.add({ id: 'hub-1', secret: SECRET })
  let raw = ''
  const stream = new Writable({ write (chunk, _e, cb) { raw += String(chunk); cb() } })
  const relay = await startRelay({ fastify: { logger: { level: 'info', stream } }, plugin: { readyPath: '/readyz', registry } })
  t.teardown(async () => { await relay.close(); await registry.close() })
  const lines = (): Array<{ level: number, msg: string, error?: string }> => raw.trim().split('\n').map(l => JSON.parse(l)).filter(l => /registry/.test(l.msg))
  t.equal(await readyStatus(relay), 200)

  await chmod(dir, 0o777)
  // Changes the file's ctime, so the server reads it again and judges its directory.
  await chmod(file, 0o640)
  await until(() => lines().length === 1, 2000, 'the warning')
  t.match(lines()[0], { level: 40, msg: /cannot read the registry/, error: /Refusing to use .*: the directory has mode 0777, writable by other users; run chmod 700 on it/ })
  t.equal(await readyStatus(relay), 503)

  await chmod(dir, 0o700)
  // Documented: a change is seen within a second.
  const took = await until(() => lines().length === 2, 1000, 'the recovery line')
  t.comment(`recovered after ${took} ms`)
  t.match(lines()[1], { level: 30, msg: /the registry can be read again/ })
  t.equal(await readyStatus(relay), 200, 'ready again')
  t.equal(registry.get('hub-1')?.secret, SECRET)
})

t.test('while reading fails, check() reads again rather than answer the last failure', { skip }, async t => {
  const dir = t.testdir()
  await chmod(dir, 0o700)
  // No polling during the test: only check() reads.
  const registry = new FileRegistry({ dataDir: dir, pollIntervalMs: 600_000 })
  t.teardown(() => registry.close())
  await registry.add({ id: 'hub-1', secret: SECRET })
  const health: Array<Error | undefined> = []
  registry.onHealth(err => health.push(err))
  await chmod(dir, 0o757)
  await chmod(join(dir, 'ids.json'), 0o600)
  await t.rejects(registry.check(), { code: 'FST_RENDEZVOUS_REGISTRY_INSECURE' })
  await chmod(dir, 0o700)
  await registry.check()
  t.same(health.map(e => e === undefined ? 'ok' : 'failing'), ['failing', 'ok'])
})
