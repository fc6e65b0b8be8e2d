import t from 'tap'
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { FileRegistry } from '../../lib/registry/file-registry'
import { serializeRegistry } from '../../lib/registry/registry-file'
import { looseness } from '../../lib/registry/permissions'
import { SECRET } from '../helpers/fixtures'

/* Loose permissions on the data dir or ids.json are refused, as OpenSSH refuses loose keys. */

const INSECURE = { code: 'FST_RENDEZVOUS_REGISTRY_INSECURE' }

function dataDir (t: { teardown: (fn: () => void) => void }): string {
  const root = mkdtempSync(join(tmpdir(), 'rv-perm-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  const dir = join(root, 'data')
  mkdirSync(dir, { mode: 0o700 })
  chmodSync(dir, 0o700)
  return dir
}

function writeIds (dir: string, ids: string[], mode: number): void {
  const file = join(dir, 'ids.json')
  writeFileSync(file, serializeRegistry(ids.map(id => [id, { id, secret: SECRET, createdAt: '2026-01-01T00:00:00.000Z' }])))
  chmodSync(file, mode)
}

t.test('a private dir and file are used', async t => {
  const dir = dataDir(t)
  writeIds(dir, ['hub-1'], 0o600)
  const registry = new FileRegistry({ dataDir: dir })
  await registry.ready()
  t.ok(registry.get('hub-1'))
  await registry.close()
})

t.test('ids.json writable by others is refused, with the fix in the message', async t => {
  for (const mode of [0o666, 0o622, 0o620, 0o602]) {
    const dir = dataDir(t)
    writeIds(dir, ['hub-1'], mode)
    const registry = new FileRegistry({ dataDir: dir })
    await t.rejects(registry.ready(), { ...INSECURE, message: /ids\.json.*chmod 600/ }, mode.toString(8))
    await t.rejects(registry.add(), INSECURE, 'nothing is written next to it either')
    await registry.close()
  }
})

t.test('ids.json readable by others is used, with a warning naming the fix', async t => {
  const dir = dataDir(t)
  writeIds(dir, ['hub-1'], 0o644)
  const warnings: Error[] = []
  const onWarning = (w: Error): void => { warnings.push(w) }
  process.on('warning', onWarning)
  t.teardown(() => { process.removeListener('warning', onWarning) })
  const registry = new FileRegistry({ dataDir: dir })
  await registry.ready()
  t.ok(registry.get('hub-1'))
  await registry.close()
  await sleep(10)
  t.match(warnings.map(w => w.message), [/ids\.json: .*readable by other users; run chmod 600/])
})

t.test('a data dir writable by others is refused, for reads and for ids add', async t => {
  const dir = dataDir(t)
  writeIds(dir, ['hub-1'], 0o600)
  chmodSync(dir, 0o777)
  const registry = new FileRegistry({ dataDir: dir })
  await t.rejects(registry.ready(), { ...INSECURE, message: /chmod 700/ })
  await registry.close()
  const empty = dataDir(t)
  chmodSync(empty, 0o775)
  const adder = new FileRegistry({ dataDir: empty })
  await t.rejects(adder.add(), INSECURE, 'ids add refuses to write into it')
  await adder.close()
})

t.test('a running server ignores a file planted with loose permissions and keeps its last good view', async t => {
  const dir = dataDir(t)
  writeIds(dir, ['hub-1'], 0o600)
  const registry = new FileRegistry({ dataDir: dir, pollIntervalMs: 20 })
  t.teardown(() => registry.close())
  await registry.ready()
  writeIds(dir, ['hub-1', 'planted'], 0o666)
  await sleep(200)
  t.equal(registry.get('planted'), undefined)
  t.ok(registry.get('hub-1'))
})

t.test('ownership: another user\'s file is refused, root\'s is accepted', async t => {
  const uid = process.getuid?.() ?? 0
  t.same(looseness({ mode: 0o100600, uid }, 'file'), {})
  t.same(looseness({ mode: 0o100600, uid: 0 }, 'file'), {})
  t.match(looseness({ mode: 0o100600, uid: uid + 4242 }, 'file').refuse, /owned by uid/)
  t.same(looseness({ mode: 0o40755, uid }, 'directory'), {})
  t.match(looseness({ mode: 0o41777, uid }, 'directory').refuse, /writable by other users/)
})

t.test('the advice fits the file: 644 for one others may read (a certificate), 600 for the others', async t => {
  const uid = process.getuid?.() ?? 0
  t.same(looseness({ mode: 0o100666, uid }, 'file', 'allow'), { refuse: 'the file has mode 0666, writable by other users; run chmod 644 on it' })
  t.same(looseness({ mode: 0o100644, uid }, 'file', 'allow'), {}, 'readable by others is what it is for')
  t.match(looseness({ mode: 0o100666, uid }, 'file', 'refuse').refuse, /run chmod 600 on it/)
  t.match(looseness({ mode: 0o100644, uid }, 'file', 'refuse').warn, /readable by other users; run chmod 600 on it/)
  t.match(looseness({ mode: 0o100666, uid }, 'file').refuse, /run chmod 600 on it/)
})
