import { mkdir } from 'node:fs/promises'
import { dirname } from 'node:path'

/**
 * `mkdir -p`, with `mode` for what it creates, built from single mkdirs:
 * Node 20's `mkdir(dir, { recursive: true })` spins forever under /proc,
 * where creating fails with ENOENT although the parent exists.
 */
export async function makeDir (dir: string, mode = 0o700): Promise<void> {
  try {
    await mkdir(dir, { mode })
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EEXIST') return
    const parent = dirname(dir)
    if (code !== 'ENOENT' || parent === dir) throw err
    await makeDir(parent, mode)
    // Once only: if the parent now exists and this still fails, the failure is real.
    await mkdir(dir, { mode }).catch((again: NodeJS.ErrnoException) => { if (again.code !== 'EEXIST') throw again })
  }
}
