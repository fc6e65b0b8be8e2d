import { stat } from 'node:fs/promises'
import { dirname, isAbsolute, relative } from 'node:path'
import { DataDirError } from './errors'
import { makeDir } from './make-dir'

/**
 * Creates the data dir if need be, so that one that cannot be used fails the
 * start with its own error, not a bare ENOENT or ENOTDIR from wherever it is
 * first touched.
 */
export async function openDataDir (dataDir: string): Promise<void> {
  try {
    await makeDir(dataDir)
    if ((await stat(dataDir)).isDirectory()) return
  } catch (err) {
    throw new DataDirError(dataDir, await whyNot(err as NodeJS.ErrnoException))
  }
  throw new DataDirError(dataDir, 'it is a file, not a directory')
}

const ON_THE_PATH = new Set(['ENOENT', 'ENOTDIR', 'EACCES', 'EPERM', 'EROFS'])

/**
 * The data dir's own error for a file-system error met on the data dir or a
 * directory above it, where a command that must not create it first (ids,
 * whose bad arguments leave nothing behind) met it; undefined for any other.
 */
export async function dataDirProblem (dataDir: string, err: unknown): Promise<Error | undefined> {
  const e = err as NodeJS.ErrnoException
  if (e?.path === undefined || !ON_THE_PATH.has(e.code ?? '')) return undefined
  const below = relative(e.path, dataDir)
  if (below.startsWith('..') || isAbsolute(below)) return undefined
  return new DataDirError(dataDir, await whyNot(e))
}

async function whyNot (err: NodeJS.ErrnoException): Promise<string> {
  const at = err.path === undefined ? '' : ` ${err.path}`
  if (err.code === 'ENOTDIR') return `${await fileOnPath(err.path) ?? 'a part of its path'} is a file, not a directory`
  if (err.code === 'ENOENT') return `cannot create${at}: no such file or directory`
  if (err.code === 'EACCES' || err.code === 'EPERM') return `cannot create${at}: permission denied`
  if (err.code === 'EROFS') return `cannot create${at}: read-only file system`
  return err.message
}

/** The nearest part of `path` that exists and is not a directory: what an ENOTDIR is about. */
async function fileOnPath (path: string | undefined): Promise<string | undefined> {
  for (let at = path; at !== undefined && dirname(at) !== at; at = dirname(at)) {
    const found = await stat(at).catch(() => undefined)
    if (found !== undefined) return found.isDirectory() ? undefined : at
  }
  return undefined
}
