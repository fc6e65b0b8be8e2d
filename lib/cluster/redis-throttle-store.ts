import { MemoryThrottleStore } from '../stores/memory-throttle-store'
import type { ThrottleStore } from '../stores/throttle-store'
import { Keys } from './keys'
import { timed, type RedisConnection } from './redis-connection'

// A fixed window per key: the first failure starts it, INCR counts within it.
const HIT = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
`
// DECR keeps the key's expiry, so the window of the hits that stay runs on; a key is never
// created or taken below zero, and one taken back to zero goes, as it would have expired.
const REFUND = `
local n = tonumber(redis.call('GET', KEYS[1]))
if n == nil then return 0 end
if n <= 1 then redis.call('DEL', KEYS[1]) return 0 end
return redis.call('DECR', KEYS[1])
`
// A shorter cool-off never cuts a longer one short.
const BLOCK = `
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], '1', 'PX', ARGV[1]) end
return 1
`

/**
 * Failed-auth counters shared by the cluster. While Redis cannot be reached
 * the node counts on its own in memory, so brute force stays limited; the
 * replay cache refuses every token meanwhile anyway.
 */
export class RedisThrottleStore implements ThrottleStore {
  readonly #conn: RedisConnection
  readonly #keys: Keys
  readonly #timeout: number
  readonly #local = new MemoryThrottleStore()

  constructor (conn: RedisConnection, opts: { keyPrefix?: string, commandTimeout?: number } = {}) {
    this.#conn = conn
    this.#keys = new Keys(opts.keyPrefix ?? 'rendezvous:')
    this.#timeout = opts.commandTimeout ?? 1000
  }

  async hit (key: string, windowMs: number): Promise<number> {
    if (!Number.isFinite(windowMs) || windowMs < 0) throw new RangeError('windowMs must be a non-negative number')
    if (windowMs === 0) return 0
    try {
      return Number(await this.#eval(HIT, `count:${key}`, Math.ceil(windowMs)))
    } catch {
      return await this.#local.hit(key, windowMs)
    }
  }

  async refund (key: string): Promise<void> {
    try {
      await this.#eval(REFUND, `count:${key}`)
    } catch {
      // Redis away now was most likely away at the hit too, which was then counted here. If not, this finds
      // nothing to take back, and the shared count holds one attempt too many until its window ends.
      await this.#local.refund(key)
    }
  }

  async block (key: string, ms: number): Promise<void> {
    if (!Number.isFinite(ms) || ms <= 0) return
    await this.#local.block(key, ms)
    try {
      await this.#eval(BLOCK, `block:${key}`, Math.ceil(ms))
    } catch {
      // Held locally; the other nodes keep counting on their own.
    }
  }

  async blockedFor (key: string): Promise<number> {
    const local = await this.#local.blockedFor(key)
    try {
      this.#failFast()
      const left = Number(await timed(this.#conn.client.pttl(this.#keys.throttle(`block:${key}`)), this.#timeout))
      return Math.max(local, left > 0 ? left : 0)
    } catch {
      return local
    }
  }

  async close (): Promise<void> {
    await this.#local.close()
  }

  // A Redis known gone or hung would make each check wait out the command timeout; the local count answers at once instead.
  #failFast (): void {
    if (!this.#conn.reachable()) throw new Error('Redis is unreachable')
  }

  async #eval (script: string, key: string, ...args: number[]): Promise<unknown> {
    this.#failFast()
    return await timed(this.#conn.client.eval(script, 1, this.#keys.throttle(key), ...args.map(String)), this.#timeout)
  }
}
