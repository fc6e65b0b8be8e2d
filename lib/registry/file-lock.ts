import { randomBytes } from 'node:crypto'
import { link, open, readFile, rename, stat, unlink, type FileHandle } from 'node:fs/promises'
import { hostname } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import { RegistryLockedError } from '../errors'

export interface LockOptions {
  /** Age after which a lock whose owner cannot be checked counts as abandoned. */
  staleMs: number
  /** How long to wait for a live lock before giving up. */
  timeoutMs: number
}

export interface HeldLock {
  /**
   * Whether `path` is still this lock. Asked just before the holder's change
   * takes effect: should a breaker have moved the lock away and failed to put
   * it back (below), another writer may hold it now.
   */
  held (): Promise<boolean>
  release (): Promise<void>
}

interface LockOwner { pid?: unknown, host?: unknown }

/**
 * A cross-process mutex on a local file system, with no daemon and no native
 * addon. The protocol:
 *
 * - Take: create `path` with O_EXCL and write the owner into it (pid, host,
 *   time and a random nonce, so that no two locks have the same content).
 *   Should that write fail (a full disk), the file is removed before failing:
 *   an empty lock would stop every writer until it went stale.
 * - Release: unlink `path` if it is still the inode we created.
 * - Break: a lock whose owner is dead on this host, or older than staleMs, is
 *   abandoned. The breaker keeps the judged file open, so its inode number
 *   cannot be given to a new lock, and renames `path` to a name of its own.
 *   A rename moves whatever is at `path` then, which may already be the next
 *   writer's lock (the judged one released since, or broken by another
 *   breaker): only when what was moved is the judged file (same dev, inode and
 *   content) is it deleted. Anything else goes back with link(), which never
 *   overwrites, so no live lock is ever deleted.
 * - Should a third writer have taken `path` in the instant it was free, the
 *   put-back fails and two writers think they hold the lock: held() tells
 *   the one whose lock was moved, before it writes, and it starts again.
 */
export async function acquireLock (path: string, options: LockOptions): Promise<HeldLock> {
  const deadline = Date.now() + options.timeoutMs
  const content = JSON.stringify({ pid: process.pid, host: hostname(), at: new Date().toISOString(), nonce: randomBytes(9).toString('base64url') }) + '\n'
  for (let attempt = 0; ; attempt++) {
    const held = await tryCreate(path, content)
    if (held !== undefined) return held
    if (await breakIfStale(path, options.staleMs)) continue
    if (Date.now() >= deadline) throw await lockedError(path, options)
    // Jittered backoff so that writers that collided do not collide again in step.
    await sleep(Math.random() * Math.min(100, 5 * 2 ** attempt) + 2)
  }
}

async function tryCreate (path: string, content: string): Promise<HeldLock | undefined> {
  let handle
  try {
    handle = await open(path, 'wx', 0o600)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return undefined
    throw err
  }
  let created: { ino: number, dev: number }
  try {
    await handle.writeFile(content)
    const st = await handle.stat()
    created = { ino: st.ino, dev: st.dev }
  } catch (err) {
    // Nobody else can have it: it was ours from the O_EXCL create on.
    await handle.close().catch(() => {})
    await unlink(path).catch(() => {})
    throw err
  }
  await handle.close()
  const isOurs = async (): Promise<boolean> => await isAt(path, created)
  return {
    held: isOurs,
    async release () {
      // If another process judged our lock stale and took over, the file at
      // `path` is theirs now, and unlinking it would let a third writer in.
      if (!(await isOurs())) return
      await unlink(path).catch((err: NodeJS.ErrnoException) => { if (err.code !== 'ENOENT') throw err })
    }
  }
}

interface Judged { ino: number, dev: number, content: string, stale: boolean }

/** Removes an abandoned lock. Resolves true when the caller should try to take the lock at once. */
async function breakIfStale (path: string, staleMs: number): Promise<boolean> {
  let handle
  try {
    handle = await open(path, 'r')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return true
    // Another user's lock: its owner cannot be checked, so it is waited for, and the error says why.
    if (code === 'EACCES' || code === 'EPERM') return false
    throw err
  }
  // Open until the break is over: the judged inode cannot be reused meanwhile.
  try {
    const judged = await judge(handle, staleMs)
    if (!judged.stale) return false
    await removeIfSame(path, judged)
    return true
  } finally {
    await handle.close()
  }
}

async function judge (handle: FileHandle, staleMs: number): Promise<Judged> {
  // Read through one handle, so that the owner and the age belong to the same file.
  const st = await handle.stat()
  const content = await handle.readFile('utf8')
  const stale = isOwnerDead(parseOwner(content)) || Date.now() - st.mtimeMs > staleMs
  return { ino: st.ino, dev: st.dev, content, stale }
}

/** Deletes the lock at `path` if it is the `judged` one; puts back whatever else a rename moved. */
async function removeIfSame (path: string, judged: Judged): Promise<void> {
  // Mostly the judged lock was released as it was read: then nothing is moved at all.
  if (!(await isAt(path, judged))) return
  const aside = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.stale`
  try {
    await rename(path, aside)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
    throw err
  }
  let same = false
  try {
    const moved = await open(aside, 'r')
    try {
      const st = await moved.stat()
      same = st.ino === judged.ino && st.dev === judged.dev && (await moved.readFile('utf8')) === judged.content
    } finally {
      await moved.close()
    }
  } finally {
    // link() refuses to overwrite, unlike rename(): a lock taken at `path` meanwhile stays.
    if (!same) await link(aside, path).catch(() => {})
    await unlink(aside).catch(() => {})
  }
}

/** Whether the file at `path` is the one `file` was taken of (same dev and inode); false when there is none. */
async function isAt (path: string, file: { ino: number, dev: number }): Promise<boolean> {
  try {
    const st = await stat(path)
    return st.ino === file.ino && st.dev === file.dev
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw err
  }
}

/** Why the lock could not be taken in time. An empty lock has no owner to wait for: that is said. */
async function lockedError (path: string, options: LockOptions): Promise<Error> {
  const why = `by another writer after ${options.timeoutMs} ms`
  let content: string
  try {
    content = await readFile(path, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code !== 'EACCES' && code !== 'EPERM') return new RegistryLockedError(path, why)
    return new RegistryLockedError(path, `after ${options.timeoutMs} ms, and it cannot be read (permission denied), so whether its owner still runs cannot be told: remove it if no rendezvous command is writing`)
  }
  if (parseOwner(content) !== undefined) return new RegistryLockedError(path, why)
  const what = content === '' ? 'it is empty' : 'it names no owner'
  return new RegistryLockedError(path, `after ${options.timeoutMs} ms, but ${what}: no writer can own it (one was stopped as it took the lock); it counts as abandoned ${options.staleMs / 1000} s after it was made, or remove it if no rendezvous command is writing`)
}

function parseOwner (text: string): LockOwner | undefined {
  try {
    const owner: unknown = JSON.parse(text)
    return typeof owner === 'object' && owner !== null ? owner as LockOwner : undefined
  } catch {
    // Also the normal state for the instant between the O_EXCL create and the write.
    return undefined
  }
}

function isOwnerDead (owner: LockOwner | undefined): boolean {
  // A pid means nothing on another host: there, only the lock's age can tell.
  if (owner === undefined || owner.host !== hostname()) return false
  const pid = owner.pid
  if (typeof pid !== 'number' || !Number.isSafeInteger(pid) || pid <= 0) return false
  return processGone(pid)
}

/** Whether no process `pid` runs on this host. */
export function processGone (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return false
  } catch (err) {
    // EPERM: the process exists but belongs to another user.
    return (err as NodeJS.ErrnoException).code === 'ESRCH'
  }
}
