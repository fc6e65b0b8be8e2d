import { randomBytes } from 'node:crypto'
import { open, rename, unlink } from 'node:fs/promises'
import { basename, join } from 'node:path'
import type { HeldLock } from './file-lock'
import { syncDir } from './file-keys'
import { serializeRegistry, type Records } from './registry-file'
import { statKey } from './registry-read'

/** Resolves to the new file's key, or undefined when `lock` was lost first: then nothing was written. */
export async function writeRegistry (dataDir: string, file: string, records: Records, lock: HeldLock): Promise<string | undefined> {
  const tmp = join(dataDir, `.${basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`)
  const handle = await open(tmp, 'wx', 0o600)
  try {
    try {
      await handle.writeFile(serializeRegistry(records))
      await handle.sync()
    } finally {
      await handle.close()
    }
    // As late as can be: a breaker may have moved the lock away (file-lock.ts).
    if (!(await lock.held())) {
      await unlink(tmp).catch(() => {})
      return undefined
    }
    await rename(tmp, file)
  } catch (err) {
    await unlink(tmp).catch(() => {})
    throw err
  }
  await syncDir(dataDir)
  // Taken after the rename, which changes ctime; we still hold the lock, so the file is ours.
  return await statKey(dataDir, file)
}
