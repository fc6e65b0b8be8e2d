import { setImmediate } from 'node:timers/promises'
import type { MemoryReplayCache } from './memory-replay-cache'
import { journalHeader, journalLine } from './replay-journal'

// Entries written between two turns of the event loop while compacting: a few ms of work.
const REWRITE_CHUNK = 4_096

export type WriteSync = (fd: number, buffer: Buffer, offset: number, length: number) => number

export function writeAll (write: WriteSync, fd: number, text: string): void {
  const buffer = Buffer.from(text)
  for (let done = 0; done < buffer.length;) {
    const wrote = write(fd, buffer, done, buffer.length - done)
    if (!(wrote > 0)) throw new Error(`a write of ${buffer.length - done} bytes wrote ${wrote}`)
    done += wrote
  }
}

/**
 * Writes the header and the entries of `memory` not expired yet to
 * `fd`, and resolves to how many lines of entries it wrote. Yields between
 * chunks: at 500,000 live entries a rewrite in one go would stall every
 * connection for about half a second.
 */
export async function writeLiveEntries (fd: number, memory: MemoryReplayCache, windowMs: number, clock: () => number, write: WriteSync, closed: () => boolean): Promise<number> {
  const { keys, ats } = memory.snapshot()
  const now = clock()
  let lines = 0
  writeAll(write, fd, journalHeader(windowMs))
  for (let i = 0; i < ats.length; i += REWRITE_CHUNK) {
    let chunk = ''
    for (let j = i; j < Math.min(i + REWRITE_CHUNK, ats.length); j++) {
      if (ats[j]! <= now) continue
      chunk += journalLine(keys[j]!, ats[j]!)
      lines++
    }
    writeAll(write, fd, chunk)
    await setImmediate()
    if (closed()) throw new Error('closed during the rewrite')
  }
  return lines
}
