import type { ReplayCache, ReplayVerdict } from '../stores/replay-cache'
import { DEFAULT_MAX_ENTRIES } from '../stores/memory-replay-cache'
import { Keys } from './keys'
import { timed, type RedisConnection } from './redis-connection'
import { AcceptedTokens } from './accepted-tokens'

export interface RedisReplayCacheOptions {
  keyPrefix?: string
  commandTimeout?: number
  /**
   * Whether a token may be taken now; default: Redis is reachable. A node
   * passes its registry's freshness too: a token checked against an ID copy
   * from before Redis came back (perhaps empty) must not be accepted.
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
 * took, until their windows end, and after every lost connection writes them
 * back before it takes another: every node then finds them taken again.
 */
export class RedisReplayCache implements ReplayCache {
  readonly #conn: RedisConnection
  readonly #keys: Keys
  readonly #timeout: number
  readonly #usable: () => boolean
  readonly #kept: AcceptedTokens
  #losses = 0
  #restored = 0
  #restoring: Promise<void> | undefined
  #retry: NodeJS.Timeout | undefined
  readonly #sweep: NodeJS.Timeout
  #closed = false

  constructor (conn: RedisConnection, opts: RedisReplayCacheOptions = {}) {
    this.#conn = conn
    this.#keys = new Keys(opts.keyPrefix ?? 'rendezvous:')
    this.#timeout = opts.commandTimeout ?? 1000
    this.#usable = opts.usable ?? conn.reachable
    this.#kept = new AcceptedTokens(opts.maxKept ?? DEFAULT_MAX_ENTRIES)
    conn.client.on('close', this.#onLost).on('ready', this.#restore)
    // Keys that expired go without waiting for new ones to push them out.
    this.#sweep = setInterval(() => this.#kept.sweep(Date.now(), 10_000), 1000)
    this.#sweep.unref()
  }

  async remember (key: string, ttlMs: number): Promise<ReplayVerdict> {
    if (typeof ttlMs !== 'number' || Number.isNaN(ttlMs) || ttlMs < 0) throw new RangeError('ttlMs must be a non-negative number')
    if (ttlMs === 0) return 'fresh'
    // Known gone or hung (a PING went unanswered), or back and not yet read: fail now, rather than after the command timeout or on a stale ID copy.
    if (!this.#usable()) throw new Error('Redis is unreachable, or the IDs were not read again since it came back')
    if (this.#losses !== this.#restored) throw new Error('Redis came back, and the tokens taken here are not yet written back to it')
    const now = Date.now()
    if (this.#kept.has(key, now)) return 'replayed'
    // A token it could not write back after Redis lost it would be accepted again: refused instead, as a full cache does.
    if (this.#kept.full(now)) return 'full'
    const answer = await timed(this.#conn.client.set(this.#keys.replay(key), '1', 'PX', Math.ceil(ttlMs), 'NX'), this.#timeout)
    if (answer !== 'OK') return 'replayed'
    this.#kept.add(key, now + ttlMs, now)
    return 'fresh'
  }

  // The connection belongs to the cluster node, which closes it; only what this cache set on it goes.
  async close (): Promise<void> {
    this.#closed = true
    clearTimeout(this.#retry)
    clearInterval(this.#sweep)
    this.#conn.client.removeListener('close', this.#onLost).removeListener('ready', this.#restore)
  }

  readonly #onLost = (): void => { this.#losses++ }

  // One write-back at a time; until one succeeds with no loss since it began, it is tried again.
  readonly #restore = (): void => {
    if (this.#closed || this.#restoring !== undefined) return
    clearTimeout(this.#retry)
    const losses = this.#losses
    this.#restoring = this.#writeBack()
      .then(() => { if (losses === this.#losses) this.#restored = losses }, () => {})
      .finally(() => {
        this.#restoring = undefined
        if (this.#losses !== this.#restored && !this.#closed) {
          this.#retry = setTimeout(this.#restore, 250)
          this.#retry.unref()
        }
      })
  }

  // One command per key, a hundred at a time: a pipeline would fail on Redis Cluster, whose keys lie in many slots.
  async #writeBack (): Promise<void> {
    for (const batch of this.#kept.batches(Date.now(), 100)) {
      await Promise.all(batch.map(async ([key, ttlMs]) => await timed(this.#conn.client.set(this.#keys.replay(key), '1', 'PX', ttlMs, 'NX'), this.#timeout)))
    }
  }
}
