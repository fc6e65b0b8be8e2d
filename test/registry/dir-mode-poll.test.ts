import t from 'tap'
import { chmod } from 'node:fs/promises'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { FileRegistry } from '../../lib/index'
import { buildProblem, runCli, startCli } from '../helpers/cli'
import { SECRET } from '../helpers/fixtures'
import { startRendezvous as startRelay, type TestRendezvous as Relay } from '../helpers/rendezvous'
import { until } from '../helpers/until'

// A data dir made writable by other users is noticed by the poll that
// watches ids.json, though the file itself does not change: a chmod of the
// directory alone. Modes are judged by their bits, so this holds as root too.

const skip = process.platform === 'win32' ? 'no POSIX modes' : false

async function readyz (port: number): Promise<{ status: number, body: unknown }> {
  const res = await fetch(`http://127.0.0.1:${port}/readyz`)
  return { status: res.status, body: await res.json() }
}

const UNREACHABLE = { status: 503, body: { status: 'not ready', reasons: ['registry_unreachable'] } }

type Test = Parameters<Parameters<typeof t.test>[0]>[0]

async function relayOn (t: Test, registry: FileRegistry): Promise<{ relay: Relay, lines: () => Array<{ level: number, msg: string, error?: string }> }> {
  let raw = ''
  const stream = new Writable({ write (chunk, _e, cb) { raw += String(chunk); cb() } })
  const relay = await startRelay({ fastify: { logger: { level: 'info', stream } }, plugin: { readyPath: '/readyz', registry } })
  t.teardown(async () => { await relay.close(); await registry.close() })
  const lines = (): Array<{ level: number, msg: string, error?: string }> => raw.trim().split('\n').filter(l => l !== '').map(l => JSON.parse(l)).filter(l => /registry/.test(l.msg))
  return { relay, lines }
}

for (const [label, provision] of [
  ['with ids.json', true],
  ['before any ids.json', false]
] as const) {
  t.test(`a chmod 777 of the data dir alone, ${label}, is seen by the poll within a second, and its repair too`, { skip }, async t => {
    const dir = t.testdir()
    await chmod(dir, 0o700)
    // The default poll, as serve runs it.
    const registry = new FileRegistry({ dataDir: dir })
    if (provision) await registry.add({ id: 'hub-1', secret: SECRET })
    const { relay, lines } = await relayOn(t, registry)
    t.equal((await readyz(relay.port)).status, 200)

    await chmod(dir, 0o777)
    // No probe meanwhile: the poll alone must notice.
    const seen = await until(() => lines().length === 1, 1000, 'the warning')
    t.comment(`seen after ${seen} ms`)
    t.match(lines()[0], { level: 40, msg: /cannot read the registry/, error: /the directory has mode 0777, writable by other users; run chmod 700 on it/ })
    t.same(await readyz(relay.port), UNREACHABLE)
    t.same(await readyz(relay.port), UNREACHABLE, 'stays so on the next probe')

    await chmod(dir, 0o700)
    const repaired = await until(() => lines().length === 2, 1000, 'the recovery line')
    t.comment(`repaired after ${repaired} ms`)
    t.match(lines()[1], { level: 30, msg: /the registry can be read again/ })
    t.equal((await readyz(relay.port)).status, 200, 'ready again')
    if (provision) t.equal(registry.get('hub-1')?.secret, SECRET, 'the IDs were kept throughout')
  })
}

t.test('readyz of serve says registry_unreachable within a second of a chmod 777 of its data dir, and ready again after chmod 700', { skip }, async t => {
  const problem = buildProblem(t)
  if (problem !== undefined) return t.fail(problem)
  const dir = mkdtempSync(join(tmpdir(), 'rendezvous-dir-mode-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const dataDir = join(dir, 'd')
  await runCli(t, ['ids', 'add', '--data-dir', dataDir])
  const serve = startCli(t, ['serve', '--no-tls', '--port', '0', '--data-dir', dataDir])
  const [, portText] = await serve.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)\//)
  const port = Number(portText)
  t.equal((await readyz(port)).status, 200)

  await chmod(dataDir, 0o777)
  // The log line comes from the poll, before any probe asks.
  await serve.waitFor(/cannot read the registry/, 1500)
  t.same(await readyz(port), UNREACHABLE)
  await chmod(dataDir, 0o700)
  await serve.waitFor(/the registry can be read again/, 1500)
  t.equal((await readyz(port)).status, 200)
  t.equal((await serve.stop('SIGTERM')).code, 0)
})
