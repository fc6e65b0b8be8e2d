import type { Stats } from 'node:fs'
import { stat } from 'node:fs/promises'
import { RegistryInsecureError } from '../errors'
import { registryWarning } from './warnings'

type Owned = Pick<Stats, 'mode' | 'uid'>

/** What a file other users can read gets: a warning (ids.json), nothing (a certificate, which is public) or a refusal (a TLS key). */
type Readable = 'warn' | 'allow' | 'refuse'

const octal = (mode: number): string => (mode & 0o7777).toString(8).padStart(4, '0')

/**
 * Judges a registry path as OpenSSH judges its key files. Whoever can write
 * ids.json, or replace it in its directory, can plant an ID of their own:
 * that is refused. A file other users can only read leaks every secret, but
 * existing setups often have it (a hand-written 0644 file): that is warned
 * about, once, and the file is used.
 */
export function looseness (st: Owned, kind: 'file' | 'directory', readable: Readable = 'warn'): { refuse?: string, warn?: string } {
  // Windows reports no POSIX modes worth checking.
  if (process.platform === 'win32' || typeof process.getuid !== 'function') return {}
  const uid = process.getuid()
  if (st.uid !== uid && st.uid !== 0) return { refuse: `the ${kind} is owned by uid ${st.uid}, not by this user (${uid}) or root` }
  // A file others may read is fixed by taking their write bit only: 600 would lock out those meant to read it.
  const fix = kind === 'directory' ? 'chmod 700' : readable === 'allow' ? 'chmod 644' : 'chmod 600'
  if ((st.mode & 0o022) !== 0) return { refuse: `the ${kind} has mode ${octal(st.mode)}, writable by other users; run ${fix} on it` }
  if (kind === 'file' && readable !== 'allow' && (st.mode & 0o044) !== 0) return { warn: `the file has mode ${octal(st.mode)}, readable by other users; run ${fix} on it` }
  return {}
}

const warned = new Set<string>()

/** Throws RegistryInsecureError when `st` (of `path`) is too open; warns (once per path) when it is readable by others. */
export function assertPrivate (path: string, st: Owned, kind: 'file' | 'directory'): void {
  const { refuse, warn } = looseness(st, kind)
  if (refuse !== undefined) throw new RegistryInsecureError(path, refuse)
  if (warn !== undefined && !warned.has(path)) {
    warned.add(path)
    registryWarning(`${path}: ${warn}`, 'RENDEZVOUS_REGISTRY_READABLE')
  }
}

/** Throws RegistryInsecureError when the directory `dir` is writable by other users. */
export async function assertPrivateDir (dir: string): Promise<void> {
  assertPrivate(dir, await stat(dir), 'directory')
}

/**
 * As assertPrivate, for a path that may not exist yet (nothing to judge
 * then). `readable`: what a file other users can read gets: a warning, as
 * ids.json; nothing, as a certificate; or a refusal, as OpenSSH refuses a
 * host key others can read.
 */
export async function assertPrivateIfPresent (path: string, kind: 'file' | 'directory', readable: Readable = 'warn'): Promise<void> {
  let st: Stats
  try {
    st = await stat(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
    throw err
  }
  if (readable === 'warn') return assertPrivate(path, st, kind)
  const { refuse, warn } = looseness(st, kind, readable)
  const refusal = refuse ?? (readable === 'refuse' ? warn : undefined)
  if (refusal !== undefined) throw new RegistryInsecureError(path, refusal)
}
