import { RegistryWriteError } from '../errors'

// What an operator can act on, rather than Node's `ENOSPC: no space left on device, write`.
const CAUSES: Record<string, string> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'the disk quota is exceeded',
  EROFS: 'the file system is read-only',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EFBIG: 'the file size limit is reached (ulimit -f)',
  EIO: 'an I/O error',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files'
}

/**
 * A failed write of the registry as RegistryWriteError naming `file` and
 * the cause; the library's own errors (a taken ID, the lock held) pass as
 * they are.
 */
export function writeFailure (err: unknown, file: string): unknown {
  const e = err as NodeJS.ErrnoException | undefined
  if (typeof e?.code !== 'string' || e.code.startsWith('FST_')) return err
  const cause = CAUSES[e.code] ?? String(e.message).split('\n', 1)[0]
  return new RegistryWriteError(file, cause)
}
