import t, { type Test } from 'tap'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { FileRegistry } from '../../lib/index'
import { startRendezvous as startRelay, type TestRendezvous as Relay } from '../helpers/rendezvous'
import { api, idsCli, TOKEN } from './helpers'

// The admin API decides whether an ID exists on the registry as it is now,
// not on the server's view of it, which may be one poll old. The poll is
// made a minute long here, so that the view is old for certain.

async function setup (t: Test): Promise<{ dir: string, registry: FileRegistry, relay: Relay, onDisk: () => Promise<string[]> }> {
  const dir = t.testdir()
  const registry = new FileRegistry({ dataDir: dir, pollIntervalMs: 60_000 })
  await registry.add({ id: 'hub-1' })
  const relay = await startRelay({ ids: [], plugin: { admin: { port: 0, token: TOKEN }, registry } })
  t.teardown(async () => { await relay.close(); await registry.close() })
  return { dir, registry, relay, onDisk: async () => Object.keys(JSON.parse(await readFile(join(dir, 'ids.json'), 'utf8')).ids).sort() }
}

t.test('an ID just added by `ids add` can be removed, rotated and disconnected at once', async t => {
  const { dir, registry, relay, onDisk } = await setup(t)
  for (const id of ['new-1', 'new-2', 'new-3']) t.equal((await idsCli('add', '--data-dir', dir, '--id', id)).code, 0)
  t.equal(registry.get('new-1'), undefined, 'the server\'s view has not seen them yet')

  t.same(await api(relay, 'POST', '/api/ids/new-1/disconnect').then(r => [r.status, r.body]), [200, { id: 'new-1', parked: 0, spliced: 0 }])
  const rotated = await api(relay, 'POST', '/api/ids/new-2/rotate', { overlapSeconds: 60 })
  t.equal(rotated.status, 200)
  t.equal(rotated.body.id, 'new-2')
  t.same(await api(relay, 'DELETE', '/api/ids/new-3').then(r => [r.status, r.body]), [200, { id: 'new-3', removed: true }])
  t.same(await onDisk(), ['hub-1', 'new-1', 'new-2'], 'removed from the file')
})

for (const [method, suffix] of [['DELETE', ''], ['POST', '/rotate'], ['POST', '/disconnect']] as const) {
  t.test(`an ID just removed by \`ids remove\` gets 404 from ${method} /api/ids/ID${suffix}, and nothing is written`, async t => {
    const { dir, registry, relay, onDisk } = await setup(t)
    t.equal((await idsCli('remove', 'hub-1', '--data-dir', dir)).code, 0)
    t.ok(registry.get('hub-1'), 'the server\'s view still has it')
    const res = await api(relay, method, `/api/ids/hub-1${suffix}`, method === 'POST' ? {} : undefined)
    t.same([res.status, res.body], [404, { error: 'not_found', message: 'no such ID' }])
    t.same(await onDisk(), [], 'not brought back')
  })
}
