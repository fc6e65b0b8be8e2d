import { spawnSync } from 'node:child_process'
import { readdir, unlink, writeFile } from 'node:fs/promises'
import { hostname } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { acquireLock, type HeldLock } from '../../lib/registry/file-lock'

// The moment that lost IDs under 20 concurrent `ids add`, played in order on
// real files: a writer judges a lock abandoned (its owner is dead); before
// it moves that lock away, the lock goes (another breaker, or its owner's
// release) and writer B takes a fresh one, which the rename moves instead;
// before it can be put back, writer D takes the free path. B and D must not
// both go on to write.

const fsp = require('node:fs/promises') as typeof import('node:fs/promises')

function deadPid (): number {
  const pid = spawnSync(process.execPath, ['-e', '']).pid
  if (pid === undefined) throw new Error('cannot spawn node')
  return pid
}

t.test('a breaker that moved a live lock and could not put it back leaves one holder, not two', async (t) => {
  const dir = t.testdir()
  const path = join(dir, 'ids.json.lock')
  const options = { staleMs: 10_000, timeoutMs: 300 }
  await writeFile(path, JSON.stringify({ pid: deadPid(), host: hostname() }) + '\n')

  const { rename, link } = fsp
  t.teardown(() => { Object.assign(fsp, { rename, link }) })
  let b: HeldLock | undefined
  let d: HeldLock | undefined
  fsp.rename = async (from, to) => {
    if (from === path && b === undefined) {
      await unlink(path)
      b = await acquireLock(path, options)
    }
    return await rename(from, to)
  }
  fsp.link = async (from, to) => {
    if (to === path && d === undefined) d = await acquireLock(path, options)
    return await link(from, to)
  }

  const breaker = await acquireLock(path, options).catch((err: Error) => err)
  t.ok(b !== undefined, 'B took the lock before the rename')
  // held() is how a holder confirms, just before it writes, that it still holds the lock.
  const stillHeld = async (lock: unknown): Promise<boolean> => {
    if (lock === undefined || lock instanceof Error) return false
    const held = (lock as Partial<HeldLock>).held
    return typeof held !== 'function' || await held()
  }
  const holders = { breaker: await stillHeld(breaker), b: await stillHeld(b), d: await stillHeld(d) }
  t.equal(Object.values(holders).filter(Boolean).length, 1, `one writer holds the lock: ${JSON.stringify(holders)}`)
  if (!(breaker instanceof Error)) await breaker.release()
  await d?.release()
  await b?.release()
  t.same((await readdir(dir)).filter(name => name.startsWith('ids.json.lock')), [], 'nothing left behind')
})
