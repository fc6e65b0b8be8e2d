import type { ReplayCache, ReplayVerdict } from '../stores/replay-cache'
import { Keys } from './keys'
import { timed, type RedisConnection } from './redis-connection'

export interface RedisReplayCacheOptions {
  keyPrefix?: string
  commandTimeout?: number
  /**
   * Whether a token may be taken now; default: Redis is reachable. A node
   * passes its registry's freshness too: a token checked against an ID copy
   * from before Redis came back (perhaps empty) must not be accepted.
   */
  usable?: () => boolean
}

/**
 * The replay cache of a cluster: one SET NX PX per token, so whichever node
 * sees a token first wins and every other node finds it taken. Redis never
 * answers 'full'; a Redis that cannot store (maxmemory with noeviction) or
 * cannot be reached makes the call reject, and the verifier then fails
 * closed with 503 (store_unavailable).
 */
export class RedisReplayCache implements ReplayCache {
  readonly #conn: RedisConnection
  readonly #keys: Keys
  readonly #timeout: number
  readonly #usable: () => boolean

  constructor (conn: RedisConnection, opts: RedisReplayCacheOptions = {}) {
    this.#conn = conn
    this.#keys = new Keys(opts.keyPrefix ?? 'rendezvous:')
    this.#timeout = opts.commandTimeout ?? 1000
    this.#usable = opts.usable ?? conn.reachable
  }

  async remember (key: string, ttlMs: number): Promise<ReplayVerdict> {
    if (typeof ttlMs !== 'number' || Number.isNaN(ttlMs) || ttlMs < 0) throw new RangeError('ttlMs must be a non-negative number')
    if (ttlMs === 0) return 'fresh'
    // Known gone or hung (a PING went unanswered), or back and not yet read: fail now, rather than after the command timeout or on a stale ID copy.
    if (!this.#usable()) throw new Error('Redis is unreachable, or the IDs were not read again since it came back')
    const answer = await timed(this.#conn.client.set(this.#keys.replay(key), '1', 'PX', Math.ceil(ttlMs), 'NX'), this.#timeout)
    return answer === 'OK' ? 'fresh' : 'replayed'
  }

  // The connection belongs to the cluster node, which closes it.
  async close (): Promise<void> {}
}
