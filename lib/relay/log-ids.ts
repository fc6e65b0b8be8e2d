import { createHash, randomFillSync } from 'node:crypto'

// 64 IDs' worth of randomness per system call: an ID per rendezvous side
// costs a slice of this buffer instead of a call into OpenSSL each.
const POOL = Buffer.alloc(8 * 64)
let next = POOL.length

/**
 * A fresh 16-hex-digit ID (64 random bits) for the log lines of one
 * connection or request: `reqId` and `connId`. Random rather than a
 * counter, so IDs from several processes or restarts never collide.
 */
export function logId (): string {
  if (next === POOL.length) {
    randomFillSync(POOL)
    next = 0
  }
  const id = POOL.toString('hex', next, next + 8)
  next += 8
  return id
}

/**
 * How a name that is no ID appears in the log. It was a credential's user
 * name, and may be the app's own (an API key sent as a Basic user name), or
 * a password typed into the wrong field: never written as it came. The
 * operator who knows the name looked for can hash it and grep.
 */
export function nameHash (name: string): string {
  return createHash('sha256').update(name).digest('hex').slice(0, 12)
}
