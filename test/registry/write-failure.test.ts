import { open, readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { FileRegistry } from '../../lib/registry/file-registry'
import { startRendezvous } from '../helpers/rendezvous'
import { api, idsCli, TOKEN } from '../admin/helpers'

type Test = Parameters<Parameters<typeof t.test>[0]>[0]

// A full disk, on real files: the n-th write through a file handle after
// failWrite() fails as the kernel fails it, with ENOSPC. The first write of
// an add is its lock's owner, the second the new ids.json.

const noSpace = (): Error => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' })

async function failWrite (t: Test, n: number): Promise<void> {
  const probe = await open(__filename, 'r')
  const proto = Object.getPrototypeOf(probe) as { writeFile: (...args: unknown[]) => Promise<void> }
  await probe.close()
  const writeFile = proto.writeFile
  let count = 0
  proto.writeFile = async function (this: unknown, ...args: unknown[]) {
    if (++count === n) throw noSpace()
    return await writeFile.apply(this, args)
  }
  t.teardown(() => { proto.writeFile = writeFile })
}

async function seeded (t: Test): Promise<{ dataDir: string, registry: FileRegistry, before: string }> {
  const dataDir = t.testdir()
  // A lock timeout shorter than the default 5 s, so that only a lock left behind could make add() fail.
  const registry = new FileRegistry({ dataDir, lockTimeoutMs: 300 })
  t.teardown(() => registry.close())
  await registry.add({ id: 'one' })
  return { dataDir, registry, before: await readFile(join(dataDir, 'ids.json'), 'utf8') }
}

const WRITE_ERROR = { code: 'FST_RENDEZVOUS_REGISTRY_WRITE', statusCode: 503 }

t.test('a lock whose owner cannot be written (full disk) is removed: the next write takes the lock at once', async (t) => {
  const { dataDir, registry, before } = await seeded(t)
  await failWrite(t, 1)
  await t.rejects(registry.add({ id: 'two' }), { ...WRITE_ERROR, message: `Cannot write the registry file ${join(dataDir, 'ids.json')}: no space left on the device` })
  t.same(await readdir(dataDir), ['ids.json'], 'no lock left behind')
  t.equal(await readFile(join(dataDir, 'ids.json'), 'utf8'), before, 'ids.json untouched')
  const started = Date.now()
  await registry.add({ id: 'two' })
  t.ok(Date.now() - started < 1000, 'the next add does not wait for the lock')
  t.ok(registry.get('two'))
})

t.test('ids.json that cannot be written (full disk) is a RegistryWriteError naming it; no temporary copy stays', async (t) => {
  const { dataDir, registry, before } = await seeded(t)
  await failWrite(t, 2)
  await t.rejects(registry.add({ id: 'two' }), { ...WRITE_ERROR, message: /ids\.json: no space left on the device$/ })
  t.same(await readdir(dataDir), ['ids.json'], 'neither lock nor temporary copy left behind')
  t.equal(await readFile(join(dataDir, 'ids.json'), 'utf8'), before, 'ids.json untouched')
})

t.test('ids add on a full disk: one line naming ids.json and the cause, exit 1', async (t) => {
  const { dataDir } = await seeded(t)
  await failWrite(t, 2)
  const run = await idsCli('add', '--data-dir', dataDir, '--id', 'two', '--json')
  t.equal(run.code, 1)
  t.equal(run.stdout, '')
  t.equal(run.stderr, `rendezvous: Cannot write the registry file ${join(dataDir, 'ids.json')}: no space left on the device\n`)
})

t.test('the admin API answers a full disk with 503 unavailable, naming ids.json and the cause', async (t) => {
  const { dataDir, registry } = await seeded(t)
  const relay = await startRendezvous({ ids: [], plugin: { admin: { port: 0, token: TOKEN }, registry } })
  t.teardown(relay.close)
  await failWrite(t, 2)
  const res = await api(relay, 'POST', '/api/ids', { id: 'two' })
  t.equal(res.status, 503)
  t.same(res.body, { error: 'unavailable', message: `Cannot write the registry file ${join(dataDir, 'ids.json')}: no space left on the device` })
  t.same(await readdir(dataDir), ['ids.json'])
})

t.test('a writer that gives up on an empty lock says that no writer can own it, and how to be rid of it', async (t) => {
  const { dataDir, registry } = await seeded(t)
  const lock = join(dataDir, 'ids.json.lock')
  await (await open(lock, 'w')).close()
  const err = await registry.add({ id: 'two' }).then(() => undefined, (e: Error) => e)
  t.match(err, { code: 'FST_RENDEZVOUS_REGISTRY_LOCKED', statusCode: 503 })
  t.equal(err?.message, `The registry lock ${lock} is still held after 300 ms, but it is empty: no writer can own it (one was stopped as it took the lock); it counts as abandoned 10 s after it was made, or remove it if no rendezvous command is writing`)
})

t.test('a lock this user cannot read is waited for, and the error says its owner cannot be checked', { skip: process.getuid?.() === 0 ? 'root reads any file' : process.platform === 'win32' ? 'no POSIX modes' : false }, async (t) => {
  const { dataDir, registry } = await seeded(t)
  const lock = join(dataDir, 'ids.json.lock')
  await (await open(lock, 'w', 0o000)).close()
  await t.rejects(registry.add({ id: 'two' }), { code: 'FST_RENDEZVOUS_REGISTRY_LOCKED', message: `The registry lock ${lock} is still held after 300 ms, and it cannot be read (permission denied), so whether its owner still runs cannot be told: remove it if no rendezvous command is writing` })
})
