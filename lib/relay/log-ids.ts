import { randomFillSync } from 'node:crypto'

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
