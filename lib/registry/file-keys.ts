import type { BigIntStats } from 'node:fs'
import { open, stat } from 'node:fs/promises'

/*
 * How a file registry tells that ids.json, or its directory, changed under
 * it without reading the file: a key made of what stat() says, compared
 * with the one it last read.
 */

/** The key of a file or directory that does not exist. */
export const MISSING = 'missing'

export function keyOf (st: BigIntStats): string {
  // The inode changes with every rename; size and nanosecond times catch the
  // rare reuse of an inode number and hand edits made in place.
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`
}

export async function fileKey (file: string): Promise<string> {
  try {
    return keyOf(await stat(file, { bigint: true }))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return MISSING
    throw err
  }
}

// Only what assertPrivateDir judges: the dir's ctime also moves with every file made in it (locks, journals).
export async function dirKey (dir: string): Promise<string> {
  try {
    const st = await stat(dir)
    return `${st.mode}:${st.uid}`
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return MISSING
    throw err
  }
}

export async function syncDir (dir: string): Promise<void> {
  // Makes the rename itself durable. Some platforms cannot open a directory: best effort.
  try {
    const handle = await open(dir, 'r')
    try {
      await handle.sync()
    } finally {
      await handle.close()
    }
  } catch {}
}
