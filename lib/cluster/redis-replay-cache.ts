import { randomUUID } from 'node:crypto'
import type { ReplayCache, ReplayVerdict } from '../stores/replay-cache'
import { DEFAULT_MAX_ENTRIES } from '../stores/memory-replay-cache'
import { Keys } from './keys'
import { timed, type RedisConnection } from './redis-connection'
import { AcceptedTokens } from './accepted-tokens'

const PROBE_TTL_MS = 5000

export interface RedisReplayCacheOptions {
  keyPrefix?: string
  commandTimeout?: number
  /**
   * Whether a token may be taken now; default: Redis is reachable. A node
   * passes its registry's freshness too: a token checked against an ID copy
   * from before Redis came back (perhaps empty) must not be accepted, and
   * the registry's catch-up after a loss runs writeBack() before it is fresh.
   */
  usable?: () => boolean
  /** Tokens this node keeps to write back to a Redis that lost them; past this many live ones, new tokens get 503. */
  maxKept?: number
}

/**
 * The replay cache of a cluster: one SET NX PX per token, so whichever node
 * sees a token first wins and every other node finds it taken. Redis never
 * answers 'full'; a Redis that cannot store (maxmemory with noeviction) or
 * cannot be reached makes the call reject, and the verifier then fails
 * closed with 503 (store_unavailable).
 *
 * A Redis that restarts from an older snapshot, or empty, has forgotten the
 * tokens taken since; the cache must not. So each node keeps the tokens it
 * took, until their windows end, and writeBack() gives them back to the
 * Redis there now: the node's registry runs it after every lost connection,
 * and no token is taken until it has succeeded.
 */
export class RedisReplayCache implements ReplayCache {
  readonly #conn: RedisConnection
  readonly #keys: Keys
  readonly #timeout: number
  readonly #usable: () => boolean
  readonly #kept: AcceptedTokens
  readonly #sweep: NodeJS.Timeout
  // Its own, so that nodes probing at once do not contend; short-lived, so that a node gone leaves nothing.
  readonly #probeKey = `probe:${randomUUID()}`
  /** Tokens sent to Redis and not yet answered: room() leaves them out. */
  #taking = 0

  constructor (conn: RedisConnection, opts: RedisReplayCacheOptions = {}) {
    this.#conn = conn
    this.#keys = new Keys(opts.keyPrefix ?? 'rendezvous:')
    this.#timeout = opts.commandTimeout ?? 1000
    this.#usable = opts.usable ?? conn.reachable
    this.#kept = new AcceptedTokens(opts.maxKept ?? DEFAULT_MAX_ENTRIES)
    // Keys that expired go without waiting for new ones to push them out.
    this.#sweep = setInterval(() => this.#kept.sweep(Date.now(), 10_000), 1000)
    this.#sweep.unref()
  }

  async remember (key: string, ttlMs: number): Promise<ReplayVerdict> {
    if (typeof ttlMs !== 'number' || Number.isNaN(ttlMs) || ttlMs < 0) throw new RangeError('ttlMs must be a non-negative number')
    if (ttlMs === 0) return 'fresh'
    // Known gone or hung (a PING went unanswered), or back and not yet caught up: fail now, rather than after the command timeout or on a stale copy.
    if (!this.#usable()) throw new Error('Redis is unreachable, or not yet caught up since it came back')
    const now = Date.now()
    if (this.#kept.has(key, now)) return 'replayed'
    // A token it could not write back after Redis lost it would be accepted again: refused instead, as a full cache does.
    if (this.#kept.full(now)) return 'full'
    this.#taking++
    try {
      if (await this.#setNx(key, Math.ceil(ttlMs)) !== 'OK') return 'replayed'
    } finally {
      this.#taking--
    }
    this.#kept.add(key, now + ttlMs, now)
    return 'fresh'
  }

  /** Tokens this node can still keep before new ones get 'full', less those on their way to Redis. */
  room (): number {
    return Math.max(0, this.#kept.room(Date.now()) - this.#taking)
  }

  /** Gives the live tokens taken here back to Redis: one command each, a hundred at a time (Redis Cluster refuses a pipeline across slots). */
  async writeBack (): Promise<void> {
    for (const batch of this.#kept.batches(Date.now(), 100)) {
      await Promise.all(batch.map(async ([key, ttlMs]) => await this.#setNx(key, ttlMs)))
    }
  }

  // The connection belongs to the cluster node, which closes it.
  async close (): Promise<void> {
    clearInterval(this.#sweep)
  }

  /** A write of this node's own probe key, as a token's would be: Redis refusing writes (out of memory) fails it. */
  async check (): Promise<void> {
    if (!this.#usable()) throw new Error('Redis is unreachable, or not yet caught up since it came back')
    await timed(this.#conn.client.set(this.#keys.replay(this.#probeKey), '1', 'PX', PROBE_TTL_MS), this.#timeout)
  }

  async #setNx (key: string, ttlMs: number): Promise<string | null> {
    return await timed(this.#conn.client.set(this.#keys.replay(key), '1', 'PX', ttlMs, 'NX'), this.#timeout)
  }
}
