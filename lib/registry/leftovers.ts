import { readdir, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { acquireLock, processGone } from './file-lock'

/**
 * What a writer killed mid-write leaves in the data dir: its temporary copy
 * of ids.json (`.ids.json.PID.HEX.tmp`, every secret in it, a rotated-out one
 * included) and a lock it had moved aside to break it (`ids.json.lock.PID.HEX.stale`).
 */
const LEFTOVER = /^(?:\.ids\.json|ids\.json\.lock)\.(\d+)\.[0-9a-f]+\.(?:tmp|stale)$/

/**
 * The leftovers in `dir` of processes that no longer run. A live writer's
 * file is never among them: its pid runs. (A writer on another host that
 * shares the directory writes only under the lock, which the caller holds.)
 */
export async function deadLeftovers (dir: string): Promise<string[]> {
  let names: string[]
  try {
    names = await readdir(dir)
  } catch {
    return []
  }
  return names.filter(name => {
    const pid = Number(LEFTOVER.exec(name)?.[1])
    return Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && processGone(pid)
  }).map(name => join(dir, name))
}

/** Removes the leftovers of dead processes in `dir`; best effort, the next write tries again. */
export async function removeDeadLeftovers (dir: string): Promise<void> {
  for (const path of await deadLeftovers(dir)) await unlink(path).catch(() => {})
}

/**
 * A writer killed mid-write leaves its temporary copy, every secret in it:
 * removed at the start too, not only at the next write, which may be far
 * off. Under the lock, if it is free now; else its holder removes them.
 */
export async function sweepLeftoversAtStart (dir: string, lockFile: string, staleMs: number): Promise<void> {
  if ((await deadLeftovers(dir)).length === 0) return
  try {
    const lock = await acquireLock(lockFile, { staleMs, timeoutMs: 0 })
    try {
      await removeDeadLeftovers(dir)
    } finally {
      await lock.release()
    }
  } catch {}
}
