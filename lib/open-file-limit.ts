import { readFileSync } from 'node:fs'

/**
 * The process's limit of open files (RLIMIT_NOFILE), where Linux tells it;
 * Node raises the soft limit to the hard one at start, so this is the one in
 * force. Undefined where it cannot be read, or is unlimited. Shared by serve
 * and the agent, which both size what they keep open by it.
 */
export function openFileLimit (read: () => string = () => readFileSync('/proc/self/limits', 'utf8')): number | undefined {
  try {
    const found = /^Max open files\s+(\d+)\s/m.exec(read())
    return found === null ? undefined : Number(found[1])
  } catch {
    return undefined
  }
}
