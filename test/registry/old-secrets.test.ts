import t, { type Test } from 'tap'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { FileRegistry } from '../../lib/registry/file-registry'
import { MemoryRegistry } from '../../lib/registry/memory-registry'
import { previousSecrets } from '../../lib/registry/records'
import { OTHER_SECRET, SECRET } from '../helpers/fixtures'
import { until } from '../helpers/until'

// Secrets a rotation replaced: each kept until its own deadline, and gone
// from ids.json with the first write after it.

const THIRD = 'KRUGS4ZANFZSAYJAORSXG5BAONSWG4TF'
const AT = '2024-01-01T00:00:00.000Z'

async function open (t: Test, dataDir: string): Promise<FileRegistry> {
  const registry = new FileRegistry({ dataDir, pollIntervalMs: 20 })
  t.teardown(() => registry.close())
  await registry.ready()
  return registry
}

const fileText = async (dataDir: string): Promise<string> => await readFile(join(dataDir, 'ids.json'), 'utf8')
const stored = async (dataDir: string, id: string): Promise<Record<string, unknown>> => JSON.parse(await fileText(dataDir)).ids[id]

t.test('a rotated-out secret leaves ids.json with the first write after its deadline, and nothing parked is cut for it', async t => {
  const dataDir = t.testdir()
  const registry = await open(t, dataDir)
  await registry.add({ id: 'hub-1', secret: SECRET })
  const rotated = await registry.rotate('hub-1', { overlapMs: 150, secret: OTHER_SECRET })
  t.match(await fileText(dataDir), SECRET, 'on disk during the overlap')
  const cut: string[] = []
  registry.onRemove(id => cut.push(id))
  await until(() => Date.now() > Date.parse(rotated!.previousExpiresAt!), 2000, 'the deadline')
  await registry.add({ id: 'another' })
  t.notMatch(await fileText(dataDir), SECRET, 'gone from the file')
  t.same(await stored(dataDir, 'hub-1'), { secret: OTHER_SECRET, createdAt: rotated!.createdAt })
  t.same(registry.get('hub-1'), { id: 'hub-1', secret: OTHER_SECRET, createdAt: rotated!.createdAt }, 'and from the view')
  t.same(cut, [], 'it was refused already: dropping it ends nothing')
})

t.test('an ids.json of an earlier version loads as it is, and loses only its expired secrets at the next write', async t => {
  const dataDir = t.testdir()
  const future = new Date(Date.now() + 3_600_000).toISOString()
  const ids = {
    expired: { secret: OTHER_SECRET, createdAt: AT, previousSecret: SECRET, previousExpiresAt: AT },
    lasting: { secret: OTHER_SECRET, createdAt: AT, previousSecret: THIRD, previousExpiresAt: future }
  }
  await writeFile(join(dataDir, 'ids.json'), JSON.stringify({ version: 1, ids }), { mode: 0o600 })
  const registry = await open(t, dataDir)
  t.same(registry.get('expired'), { id: 'expired', ...ids.expired }, 'read unchanged')
  t.same(registry.get('lasting'), { id: 'lasting', ...ids.lasting })
  await registry.remove('nobody')
  t.match(await fileText(dataDir), SECRET, 'a change that changes nothing writes nothing')
  await registry.add({ id: 'new' })
  t.same(await stored(dataDir, 'expired'), { secret: OTHER_SECRET, createdAt: AT })
  t.same(await stored(dataDir, 'lasting'), ids.lasting, 'an overlap that lasts is kept as it was')
  t.notMatch(await fileText(dataDir), SECRET)
})

t.test('two rotations: each old secret until its own deadline, the pair of fields taking the one that remains', async t => {
  const dataDir = t.testdir()
  const registry = await open(t, dataDir)
  await registry.add({ id: 'hub-1', secret: SECRET })
  const first = await registry.rotate('hub-1', { overlapMs: 60_000, secret: OTHER_SECRET })
  const second = await registry.rotate('hub-1', { overlapMs: 150, secret: THIRD })
  t.same(second, {
    id: 'hub-1',
    secret: THIRD,
    createdAt: first!.createdAt,
    previousSecret: OTHER_SECRET,
    previousExpiresAt: second!.previousExpiresAt,
    olderSecrets: [{ secret: SECRET, expiresAt: first!.previousExpiresAt }]
  })
  t.ok(Object.isFrozen(second!.olderSecrets) && Object.isFrozen(second!.olderSecrets![0]), 'frozen, as records are')
  const reader = await open(t, dataDir)
  t.same(reader.get('hub-1'), second, 'read back from the file as written')

  await until(() => Date.now() > Date.parse(second!.previousExpiresAt!), 2000, 'the second deadline')
  await registry.add({ id: 'another' })
  t.same(await stored(dataDir, 'hub-1'), { secret: THIRD, createdAt: first!.createdAt, previousSecret: SECRET, previousExpiresAt: first!.previousExpiresAt })
  await until(() => reader.get('hub-1')?.previousSecret === SECRET, 1000, 'the other reader')
})

t.test('a damaged olderSecrets makes the file corrupt, naming the field', async t => {
  const future = new Date(Date.now() + 3_600_000).toISOString()
  const base = { secret: OTHER_SECRET, createdAt: AT, previousSecret: THIRD, previousExpiresAt: future }
  const cases: Array<[string, Record<string, unknown>]> = [
    ['not a list', { ...base, olderSecrets: { secret: SECRET, expiresAt: future } }],
    ['an entry without its deadline', { ...base, olderSecrets: [{ secret: SECRET }] }],
    ['an entry with a bad secret', { ...base, olderSecrets: [{ secret: 'short', expiresAt: future }] }],
    ['older secrets without the pair', { secret: OTHER_SECRET, createdAt: AT, olderSecrets: [{ secret: SECRET, expiresAt: future }] }]
  ]
  for (const [what, entry] of cases) {
    const dataDir = t.testdir()
    await writeFile(join(dataDir, 'ids.json'), JSON.stringify({ version: 1, ids: { a: entry } }), { mode: 0o600 })
    const registry = new FileRegistry({ dataDir })
    await t.rejects(registry.ready(), { code: 'FST_RENDEZVOUS_REGISTRY_CORRUPT', message: /invalid olderSecrets for ID a/ }, what)
    await registry.close()
  }
})

t.test('the memory registry keeps every promised secret too, and a rotation without overlap revokes them all', async t => {
  const registry = new MemoryRegistry()
  await registry.add({ id: 'hub-1', secret: SECRET })
  const cut: string[] = []
  registry.onRemove(id => cut.push(id))
  await registry.rotate('hub-1', { overlapMs: 60_000, secret: OTHER_SECRET })
  const second = await registry.rotate('hub-1', { overlapMs: 60_000, secret: THIRD })
  t.same(cut, [], 'both old secrets still accepted')
  t.same([second?.previousSecret, second?.olderSecrets?.map(o => o.secret)], [OTHER_SECRET, [SECRET]])
  const back = await registry.rotate('hub-1', { overlapMs: 60_000, secret: SECRET })
  t.same([back?.secret, back?.previousSecret, back?.olderSecrets?.map(o => o.secret)], [SECRET, THIRD, [OTHER_SECRET]], 'a secret rotated back into use is no longer an old one')
  const revoked = await registry.rotate('hub-1', { overlapMs: 0 })
  t.same(cut, ['hub-1'], 'what parked with any of them is cut off')
  t.same(registry.get('hub-1'), { id: 'hub-1', secret: revoked!.secret, createdAt: back!.createdAt }, 'no old secret left, whatever deadline it had')
  t.same(previousSecrets(registry.get('hub-1')), [])
})

t.test('an overlap of 0 revokes the old secrets of every registry, in the file too', async t => {
  const dataDir = t.testdir()
  const registry = await open(t, dataDir)
  await registry.add({ id: 'hub-1', secret: SECRET })
  const reader = await open(t, dataDir)
  const cut: string[] = []
  reader.onRemove(id => cut.push(id))
  await registry.rotate('hub-1', { overlapMs: 600_000, secret: OTHER_SECRET })
  await until(() => reader.get('hub-1')?.secret === OTHER_SECRET, 1000, 'the first rotation')
  const revoked = await registry.rotate('hub-1', { overlapMs: 0, secret: THIRD })
  t.same(await stored(dataDir, 'hub-1'), { secret: THIRD, createdAt: revoked!.createdAt })
  t.notMatch(await fileText(dataDir), SECRET, 'the first secret is gone from the file before its deadline')
  await until(() => cut.length > 0, 1000, 'the other reader')
  t.same(previousSecrets(reader.get('hub-1')), [], 'and refused by a reader of the file')
})

t.test('a rotation to the current secret is refused, and changes nothing', async t => {
  const dataDir = t.testdir()
  const file = await open(t, dataDir)
  const memory = new MemoryRegistry()
  for (const registry of [file, memory]) {
    await registry.add({ id: 'hub-1', secret: SECRET })
    const first = await registry.rotate('hub-1', { overlapMs: 600_000, secret: OTHER_SECRET })
    for (const overlapMs of [60_000, 0]) {
      await t.rejects(registry.rotate('hub-1', { overlapMs, secret: OTHER_SECRET.toLowerCase() }), {
        code: 'FST_RENDEZVOUS_SECRET_UNCHANGED',
        statusCode: 400,
        message: 'The ID hub-1 already has this secret: a rotation must give it another one (or none, to have one generated)'
      })
    }
    t.same(registry.get('hub-1'), first, 'the old secret keeps its deadline')
  }
  t.same(await stored(dataDir, 'hub-1'), { secret: OTHER_SECRET, createdAt: file.get('hub-1')!.createdAt, previousSecret: SECRET, previousExpiresAt: file.get('hub-1')!.previousExpiresAt })
})
