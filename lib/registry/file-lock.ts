import { randomBytes } from 'node:crypto'
import { link, open, rename, stat, unlink } from 'node:fs/promises'
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
  release (): Promise<void>
}

interface LockOwner { pid?: unknown, host?: unknown }

/**
 * A cross-process mutex: whoever creates `path` with O_EXCL holds it. Works on
 * any local file system, with no daemon and no native addon.
 */
export async function acquireLock (path: string, options: LockOptions): Promise<HeldLock> {
  const deadline = Date.now() + options.timeoutMs
  const content = JSON.stringify({ pid: process.pid, host: hostname(), at: new Date().toISOString() }) + '\n'
  for (let attempt = 0; ; attempt++) {
    const held = await tryCreate(path, content)
    if (held !== undefined) return held
    if (await breakIfStale(path, options.staleMs)) continue
    if (Date.now() >= deadline) throw new RegistryLockedError(path, options.timeoutMs)
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
  let ino: number
  try {
    await handle.writeFile(content)
    ino = (await handle.stat()).ino
  } finally {
    await handle.close()
  }
  return {
    async release () {
      // If another process judged our lock stale and took over, the file at
      // `path` is theirs now, and unlinking it would let a third writer in.
      try {
        if ((await stat(path)).ino !== ino) return
        await unlink(path)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      }
    }
  }
}

/** Removes an abandoned lock. Resolves true when the caller should try to take the lock at once. */
async function breakIfStale (path: string, staleMs: number): Promise<boolean> {
  let handle
  try {
    handle = await open(path, 'r')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true
    throw err
  }
  let ino: number
  let stale: boolean
  try {
    // Read through one handle, so that the owner and the age belong to the same file.
    const st = await handle.stat()
    ino = st.ino
    stale = isOwnerDead(parseOwner(await handle.readFile('utf8'))) || Date.now() - st.mtimeMs > staleMs
  } finally {
    await handle.close()
  }
  if (!stale) return false

  // Only one breaker can win the rename of a given file, so two breakers that
  // saw the same stale lock cannot both go on to delete a fresh one.
  const aside = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.stale`
  try {
    await rename(path, aside)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true
    throw err
  }
  try {
    if ((await stat(aside)).ino !== ino) {
      // The stale lock was replaced by a live one between our look and our
      // rename: give it back. link() refuses to overwrite, unlike rename().
      await link(aside, path).catch(() => {})
    }
  } finally {
    await unlink(aside).catch(() => {})
  }
  return true
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
