import { ROOT } from '../helpers/cli'
import { until } from '../helpers/until'
import { execFile, spawn } from 'node:child_process'
import { mkdir, readdir, readFile, stat, utimes, writeFile } from 'node:fs/promises'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { decodeSecret } from '../../lib/registry/ids'
import { FileRegistry, type FileRegistryOptions } from '../../lib/registry/file-registry'
import { OTHER_SECRET, SECRET } from '../helpers/fixtures'

function open (t: tap.Test, options: FileRegistryOptions): FileRegistry {
  const registry = new FileRegistry(options)
  t.teardown(() => registry.close())
  return registry
}

function fileJson (dataDir: string, ids: Record<string, { secret: string, createdAt: string }>): string {
  return JSON.stringify({ version: 1, ids })
}

t.test('a missing file is an empty registry; the first add creates dir 0700 and file 0600', async (t) => {
  const dataDir = join(t.testdir(), 'sub', 'data')
  const registry = open(t, { dataDir })
  await registry.ready()
  t.same(await registry.list(), [])
  const record = await registry.add({ id: 'Alpha', secret: SECRET })
  t.equal(record.id, 'alpha')
  t.equal((await stat(dataDir)).mode & 0o777, 0o700)
  t.equal((await stat(join(dataDir, 'ids.json'))).mode & 0o777, 0o600)
  t.same(JSON.parse(await readFile(join(dataDir, 'ids.json'), 'utf8')), {
    version: 1,
    ids: { alpha: { secret: SECRET, createdAt: record.createdAt } }
  })
  t.same(await readdir(dataDir), ['ids.json'], 'no temp or lock file left behind')
})

t.test('a data dir that is a file is refused with the registry\'s code, naming the mistake', async (t) => {
  const dataDir = join(t.testdir(), 'plain-file')
  await writeFile(dataDir, 'not a directory\n')
  const registry = open(t, { dataDir })
  await t.rejects(registry.ready(), { code: 'FST_RENDEZVOUS_REGISTRY_CORRUPT', message: /plain-file is a file, not a directory/ })
})

t.test('add generates, validates, canonicalises and refuses duplicates', async (t) => {
  const registry = open(t, { dataDir: t.testdir() })
  await registry.ready()
  const generated = await registry.add()
  t.match(generated.id, /^[0-9a-f-]{36}$/)
  t.equal(decodeSecret(generated.secret).length, 20)
  t.equal(registry.get(generated.id.toUpperCase()), registry.get(generated.id))
  await registry.add({ id: 'Dup' })
  await t.rejects(registry.add({ id: 'DUP' }), { code: 'FST_RENDEZVOUS_ID_EXISTS' })
  await t.rejects(registry.add({ id: 'bad id' }), { code: 'FST_RENDEZVOUS_INVALID_ID' })
  await t.rejects(registry.add({ secret: 'AAAA' }), { code: 'FST_RENDEZVOUS_INVALID_SECRET' })
  t.same((await registry.list()).map((r) => r.id), [generated.id, 'dup'])
  t.equal(registry.get('\u212A'), undefined)
})

t.test('remove resolves false for unknown IDs and fires local listeners', async (t) => {
  const dataDir = t.testdir()
  const registry = open(t, { dataDir })
  await registry.ready()
  await registry.add({ id: 'gone' })
  const seen: string[] = []
  registry.onRemove((id) => seen.push(id))
  t.equal(await registry.remove('nope'), false)
  t.equal(await registry.remove('in/valid'), false)
  t.equal(await registry.remove('GONE'), true)
  t.same(seen, ['gone'])
  t.equal(registry.get('gone'), undefined)
  t.same(JSON.parse(await readFile(join(dataDir, 'ids.json'), 'utf8')).ids, {})
})

t.test('two instances on one directory see each other within a second', async (t) => {
  const dataDir = t.testdir()
  const a = open(t, { dataDir })
  const b = open(t, { dataDir }) // default poll interval, as `serve` uses it
  await a.ready()
  await b.ready()
  const removedOnB: string[] = []
  b.onRemove((id) => removedOnB.push(id))

  const record = await a.add({ id: 'Shared' })
  const seenAfter = await until(() => b.get('shared') !== undefined, 1000, 'add seen by b')
  t.ok(seenAfter < 1000, `seen after ${seenAfter} ms`)
  t.same(b.get('SHARED'), record)

  t.equal(await a.remove('shared'), true)
  await until(() => removedOnB.length > 0, 1000, 'remove seen by b')
  t.same(removedOnB, ['shared'])
  t.equal(b.get('shared'), undefined)
})

t.test('an ID removed and re-added with a new secret between polls counts as removed', async (t) => {
  const dataDir = t.testdir()
  const a = open(t, { dataDir })
  const b = open(t, { dataDir, pollIntervalMs: 60_000 }) // b only learns through list()
  await a.ready()
  await a.add({ id: 'x', secret: SECRET })
  await b.ready()
  const removed: string[] = []
  b.onRemove((id) => removed.push(id))
  await a.remove('x')
  await a.add({ id: 'x', secret: OTHER_SECRET })
  await b.list()
  t.same(removed, ['x'])
  t.equal(b.get('x')?.secret, OTHER_SECRET)
})

t.test('concurrent adds from two instances lose nothing', async (t) => {
  const dataDir = t.testdir()
  const a = open(t, { dataDir })
  const b = open(t, { dataDir, pollIntervalMs: 60_000 }) // so b writes from a stale view
  await a.ready()
  await b.ready()
  const ids = Array.from({ length: 40 }, (_, i) => `id-${i}`)
  await Promise.all(ids.map((id, i) => (i % 2 === 0 ? a : b).add({ id })))
  const onDisk = Object.keys(JSON.parse(await readFile(join(dataDir, 'ids.json'), 'utf8')).ids)
  t.same(onDisk.sort(), [...ids].sort())
  t.same((await a.list()).map((r) => r.id).sort(), [...ids].sort())
  t.same((await b.list()).map((r) => r.id).sort(), [...ids].sort())
})

t.test('concurrent adds from several processes lose nothing', async (t) => {
  const dataDir = t.testdir()
  const script = `
    const { FileRegistry } = require(${JSON.stringify(join(ROOT, 'lib/registry/file-registry.ts'))})
    const registry = new FileRegistry({ dataDir: process.argv[1] })
    const tag = process.argv[2]
    // No close(): the poll timer must not keep the process alive.
    registry.ready().then(() => Promise.all(Array.from({ length: 15 }, (_, i) => registry.add({ id: tag + '-' + i }))))
      .catch((err) => { console.error(err); process.exitCode = 1 })
  `
  const run = promisify(execFile)
  await Promise.all(['p1', 'p2', 'p3'].map((tag) =>
    run(process.execPath, ['--import', 'tsx', '-e', script, dataDir, tag], { cwd: ROOT, timeout: 30_000 })))
  const onDisk = Object.keys(JSON.parse(await readFile(join(dataDir, 'ids.json'), 'utf8')).ids)
  t.equal(onDisk.length, 45)
  for (const tag of ['p1', 'p2', 'p3']) t.equal(onDisk.filter((id) => id.startsWith(tag + '-')).length, 15, tag)
})

t.test('lock handling', async (t) => {
  t.test('a lock left by a dead process is recovered at once', async (t) => {
    const dataDir = t.testdir()
    const child = spawn(process.execPath, ['-e', ''])
    await new Promise((resolve) => child.on('exit', resolve))
    await writeFile(join(dataDir, 'ids.json.lock'), JSON.stringify({ pid: child.pid, host: hostname() }))
    const registry = open(t, { dataDir, lockTimeoutMs: 2000 })
    await registry.ready()
    const start = Date.now()
    await registry.add({ id: 'after-dead' })
    t.ok(Date.now() - start < 1000)
    t.same(await readdir(dataDir), ['ids.json'])
  })

  t.test('an old lock from another host is recovered by age', async (t) => {
    const dataDir = t.testdir()
    const lock = join(dataDir, 'ids.json.lock')
    await writeFile(lock, JSON.stringify({ pid: 1, host: 'elsewhere.invalid' }))
    const old = new Date(Date.now() - 60_000)
    await utimes(lock, old, old)
    const registry = open(t, { dataDir, lockTimeoutMs: 2000 })
    await registry.add({ id: 'after-old' })
    t.ok(registry.get('after-old'))
  })

  t.test('a live lock makes writers wait, then give up without writing', async (t) => {
    const dataDir = t.testdir()
    await writeFile(join(dataDir, 'ids.json'), fileJson(dataDir, {}))
    await writeFile(join(dataDir, 'ids.json.lock'), JSON.stringify({ pid: process.pid, host: hostname() }))
    const registry = open(t, { dataDir, lockTimeoutMs: 300 })
    await registry.ready()
    await t.rejects(registry.add({ id: 'blocked' }), { code: 'FST_RENDEZVOUS_REGISTRY_LOCKED' })
    t.same(JSON.parse(await readFile(join(dataDir, 'ids.json'), 'utf8')).ids, {})
  })
})

t.test('corrupt files', async (t) => {
  t.test('at ready(): rejects with RegistryCorruptError without quoting secrets', async (t) => {
    const dataDir = t.testdir()
    // A hand edit that lost the quotes: V8's own message would quote the secret.
    await writeFile(join(dataDir, 'ids.json'), `{"version":1,"ids":{"a":{"secret":${SECRET}}}}`)
    const registry = open(t, { dataDir })
    const err = await registry.ready().then(() => undefined, (e: Error) => e)
    t.match(err, { code: 'FST_RENDEZVOUS_REGISTRY_CORRUPT' })
    t.notMatch(err?.message, SECRET.slice(0, 8))
    // Once repaired, ready() can be tried again.
    await writeFile(join(dataDir, 'ids.json'), fileJson(dataDir, { A: { secret: SECRET, createdAt: '2024-01-01T00:00:00.000Z' } }))
    await registry.ready()
    t.equal(registry.get('a')?.secret, SECRET, 'a hand-written upper-case key is canonicalised')
  })

  for (const [name, text] of [
    ['empty', ''],
    ['array', '[]'],
    ['wrong version', '{"version":2,"ids":{}}'],
    ['bad ID', `{"version":1,"ids":{"a b":{"secret":"${SECRET}","createdAt":"x"}}}`],
    ['bad secret', '{"version":1,"ids":{"a":{"secret":"short","createdAt":"x"}}}'],
    ['duplicate', `{"version":1,"ids":{"a":{"secret":"${SECRET}","createdAt":"x"},"A":{"secret":"${SECRET}","createdAt":"x"}}}`]
  ]) {
    t.test(`at ready(): ${name}`, async (t) => {
      const dataDir = t.testdir()
      await writeFile(join(dataDir, 'ids.json'), text)
      await t.rejects(open(t, { dataDir }).ready(), { code: 'FST_RENDEZVOUS_REGISTRY_CORRUPT' })
    })
  }

  t.test('on reload: keeps the last good view, then picks up the repair', async (t) => {
    const dataDir = t.testdir()
    const file = join(dataDir, 'ids.json')
    const good = { a: { secret: SECRET, createdAt: '2024-01-01T00:00:00.000Z' } }
    await writeFile(file, fileJson(dataDir, good))
    const registry = open(t, { dataDir, pollIntervalMs: 20 })
    await registry.ready()
    const removed: string[] = []
    registry.onRemove((id) => removed.push(id))
    await writeFile(file, '{"version":1,"ids":')
    await new Promise((resolve) => setTimeout(resolve, 150))
    t.equal(registry.get('a')?.secret, SECRET)
    t.same((await registry.list()).map((r) => r.id), ['a'])
    t.same(removed, [])
    // A writer must not overwrite a file it cannot read.
    await t.rejects(registry.add({ id: 'b' }), { code: 'FST_RENDEZVOUS_REGISTRY_CORRUPT' })
    t.equal(await readFile(file, 'utf8'), '{"version":1,"ids":')
    await writeFile(file, fileJson(dataDir, { b: good.a }))
    await until(() => registry.get('b') !== undefined, 1000, 'repair seen')
    t.same(removed, ['a'])
  })
})

t.test('a stored secret of an impossible base32 length, from an earlier version, still loads, with one warning', async (t) => {
  const dataDir = t.testdir()
  const odd = SECRET + 'A'
  await writeFile(join(dataDir, 'ids.json'), fileJson(dataDir, {
    odd: { secret: odd, createdAt: '2024-01-01T00:00:00.000Z' },
    fine: { secret: OTHER_SECRET, createdAt: '2024-01-01T00:00:00.000Z' }
  }))
  const warnings: Error[] = []
  const onWarning = (w: Error): void => { warnings.push(w) }
  process.on('warning', onWarning)
  t.teardown(() => { process.off('warning', onWarning) })
  const registry = open(t, { dataDir, pollIntervalMs: 20 })
  await registry.ready()
  t.equal(registry.get('odd')?.secret, odd, 'kept as stored: the relay and its agent go on working')
  t.equal(registry.get('fine')?.secret, OTHER_SECRET, 'the other IDs are untouched')
  await registry.add({ id: 'new' })
  await new Promise((resolve) => setTimeout(resolve, 100))
  const ours = warnings.filter((w) => (w as NodeJS.ErrnoException).code === 'RENDEZVOUS_REGISTRY_ODD_SECRET')
  t.equal(ours.length, 1, 'warned once, not at every reload')
  t.match(ours[0]?.message, /ID odd .*33 characters is not a possible length of base32.*rotate it/)
  t.notMatch(ours[0]?.message, SECRET.slice(0, 8), 'the secret is not quoted')
})

t.test('IDs that name Object.prototype\'s own keys are stored and read back like any other', async (t) => {
  const dataDir = t.testdir()
  const writer = open(t, { dataDir })
  await writer.ready()
  const ids = ['__proto__', 'constructor', 'valueof', 'tostring']
  for (const id of ids) await writer.add({ id })
  const stored = JSON.parse(await readFile(join(dataDir, 'ids.json'), 'utf8'))
  t.same(Object.keys(stored.ids).sort(), [...ids].sort(), 'every one written to ids.json')
  const reader = open(t, { dataDir })
  await reader.ready()
  t.same((await reader.list()).map(r => r.id).sort(), [...ids].sort(), 'and read back after a restart')
  t.equal(reader.get('__proto__')?.secret, writer.get('__proto__')?.secret)
})

t.test('close() stops polling', async (t) => {
  const dataDir = t.testdir()
  const writer = open(t, { dataDir })
  const reader = new FileRegistry({ dataDir, pollIntervalMs: 20 })
  await reader.ready()
  await reader.close()
  await writer.add({ id: 'late' })
  await new Promise((resolve) => setTimeout(resolve, 150))
  t.equal(reader.get('late'), undefined)
})

t.test('options are validated', async (t) => {
  t.throws(() => new FileRegistry({ dataDir: '' }), { code: 'FST_RENDEZVOUS_BAD_OPTION' })
  t.throws(() => new FileRegistry({ dataDir: 'x', pollIntervalMs: 0 }), { code: 'FST_RENDEZVOUS_BAD_OPTION' })
  t.throws(() => new FileRegistry({ dataDir: 'x', pollIntervalMs: Number.NaN }), { code: 'FST_RENDEZVOUS_BAD_OPTION' })
  const dir = join(t.testdir(), 'y')
  await mkdir(dir, { recursive: true })
  t.equal(new FileRegistry({ dataDir: dir }).file, join(dir, 'ids.json'))
})
