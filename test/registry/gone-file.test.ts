import t from 'tap'
import { chmod, mkdir, rm, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { FileRegistry } from '../../lib/index'
import { SECRET } from '../helpers/fixtures'
import { startRendezvous as startRelay, type TestRendezvous as Relay } from '../helpers/rendezvous'
import { until } from '../helpers/until'
import { idsCli } from '../admin/helpers'

// An ids.json deleted while the server runs, alone or with its whole data
// dir, is a registry that cannot be read, as a corrupt one is: the IDs last
// read stay, the log says so once, /readyz says registry_unreachable, and a
// write (ids add) that makes the file anew ends it. A data dir that never had
// an ids.json is an empty registry, with nothing to say.

async function readyz (port: number): Promise<{ status: number, body: unknown }> {
  const res = await fetch(`http://127.0.0.1:${port}/readyz`)
  return { status: res.status, body: await res.json() }
}

const UNREACHABLE = { status: 503, body: { status: 'not ready', reasons: ['registry_unreachable'] } }

type Test = Parameters<Parameters<typeof t.test>[0]>[0]
interface Line { level: number, msg: string, error?: string }

async function relayOn (t: Test, registry: FileRegistry): Promise<{ relay: Relay, lines: () => Line[] }> {
  let raw = ''
  const stream = new Writable({ write (chunk, _e, cb) { raw += String(chunk); cb() } })
  const relay = await startRelay({ fastify: { logger: { level: 'info', stream } }, plugin: { readyPath: '/readyz', registry } })
  t.teardown(async () => { await relay.close(); await registry.close() })
  const lines = (): Line[] => raw.trim().split('\n').filter(l => l !== '').map(l => JSON.parse(l)).filter(l => /registry/.test(l.msg))
  return { relay, lines }
}

for (const [label, remove] of [
  ['ids.json', async (dataDir: string) => { await unlink(join(dataDir, 'ids.json')) }],
  ['the whole data dir', async (dataDir: string) => { await rm(dataDir, { recursive: true }) }]
] as const) {
  t.test(`${label} deleted while serving: the IDs last read stay, one warning names the file, readyz says registry_unreachable until ids add writes it anew`, async t => {
    const dataDir = join(t.testdir(), 'data')
    await mkdir(dataDir, { mode: 0o700 })
    await chmod(dataDir, 0o700)
    const registry = new FileRegistry({ dataDir, pollIntervalMs: 20 })
    await registry.add({ id: 'hub-1', secret: SECRET })
    const { relay, lines } = await relayOn(t, registry)
    t.equal((await readyz(relay.port)).status, 200)

    await remove(dataDir)
    await until(() => lines().length === 1, 1000, 'the warning')
    t.match(lines()[0], { level: 40, msg: 'cannot read the registry; serving the IDs last read', error: `The registry file ${join(dataDir, 'ids.json')} cannot be read: it is missing (it was there when last read); rendezvous ids add writes it anew` })
    t.equal(registry.get('hub-1')?.secret, SECRET, 'the ID last read is still served')
    t.same(await readyz(relay.port), UNREACHABLE)
    await sleep(200)
    t.equal(lines().length, 1, 'said once, however many polls')

    const added = await idsCli('add', '--data-dir', dataDir, '--id', 'hub-2', '--json')
    t.equal(added.code, 0, added.stderr)
    await until(() => lines().length === 2, 1000, 'the recovery line')
    t.match(lines()[1], { level: 30, msg: 'the registry can be read again' })
    t.equal((await readyz(relay.port)).status, 200)
    t.ok(registry.get('hub-2'), 'the new file is served')
    t.equal(registry.get('hub-1'), undefined, 'and only it: the deleted file took its IDs along')
  })
}

t.test('a data dir that never had an ids.json is an empty registry: ready, no warning', async t => {
  const dataDir = t.testdir()
  const registry = new FileRegistry({ dataDir, pollIntervalMs: 20 })
  const { relay, lines } = await relayOn(t, registry)
  await sleep(200)
  t.equal((await readyz(relay.port)).status, 200)
  t.same(lines(), [])
  t.same(await registry.list(), [])
})
