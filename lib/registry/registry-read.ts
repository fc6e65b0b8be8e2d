import { open } from 'node:fs/promises'
import { RegistryCorruptError } from '../errors'
import { dirKey, fileKey, keyOf, MISSING } from './file-keys'
import { assertPrivate, assertPrivateDir, assertPrivateIfPresent } from './permissions'
import { parseRegistry, type Records } from './registry-file'
import { assertRegistrySize } from './size-bound'

/** `present`: whether it was read from a file, rather than being the empty registry of a file not made yet. */
export interface Snapshot { key: string, records: Records, present: boolean }

export interface ReadOptions {
  /** Whether the last view was read from a file: if that file goes, the view is kept and the loss reported. */
  present: boolean
  /** A missing file is the empty registry, which the write makes, even when one was read before. */
  writing: boolean
  /** Told the key of a file whose content was refused (too big, corrupt), and why. */
  refused: (key: string, error: Error) => void
}

/**
 * What a poll compares with the key of its last read. The directory's part:
 * a chmod of the data dir alone leaves ids.json as it was, yet a dir others
 * can write lets them replace the file, and must be noticed as the file's mode is.
 */
export async function statKey (dataDir: string, file: string): Promise<string> {
  const dir = await dirKey(dataDir)
  return `${dir}|${await fileKey(file)}`
}

export async function readRegistry (dataDir: string, file: string, opts: ReadOptions): Promise<Snapshot> {
  // Taken before the checks: a directory changed after them is judged again at the next poll.
  const dir = await dirKey(dataDir)
  let handle
  try {
    handle = await open(file, 'r')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') throw new RegistryCorruptError(file, `${dataDir} is a file, not a directory`)
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    // Deleted (or its whole data dir) while we serve: dropping every ID
    // for it would be silent, and is no more wanted than for a corrupt file.
    if (opts.present && !opts.writing) throw new RegistryCorruptError(file, 'it is missing (it was there when last read); rendezvous ids add writes it anew')
    // No IDs yet, but a dir others can write is refused all the same: they could plant an ids.json in it.
    await assertPrivateIfPresent(dataDir, 'directory')
    return { key: `${dir}|${MISSING}`, records: new Map(), present: false }
  }
  try {
    // fstat and read through one handle: writers replace the file by rename
    // and never write in place, so this key names exactly these bytes.
    const st = await handle.stat({ bigint: true })
    assertPrivate(file, { mode: Number(st.mode), uid: Number(st.uid) }, 'file')
    await assertPrivateDir(dataDir)
    const key = `${dir}|${keyOf(st)}`
    try {
      assertRegistrySize(file, st.size)
      return { key, records: parseRegistry(await handle.readFile('utf8'), file), present: true }
    } catch (err) {
      if ((err as { code?: unknown }).code === 'FST_RENDEZVOUS_REGISTRY_CORRUPT') opts.refused(key, err as Error)
      throw err
    }
  } finally {
    await handle.close()
  }
}
