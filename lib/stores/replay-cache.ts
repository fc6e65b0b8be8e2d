export type ReplayVerdict = 'fresh' | 'replayed' | 'full'

/**
 * Remembers accepted one-time tokens for as long as they could be replayed.
 * It must never forget a key inside its ttl: when it has no room it answers
 * 'full', and the caller refuses the token (fail closed).
 */
export interface ReplayCache {
  remember (key: string, ttlMs: number): Promise<ReplayVerdict>
  /**
   * Live entries it can still take before it answers 'full', less those it
   * is taking now (a remember() not yet answered), so that tokens sent at
   * once cannot all see the same room. Optional: the relay keeps each ID to
   * its share of the cache (replayCachePerId) only when it can ask, and
   * readiness reports a full cache by it.
   */
  room? (): number
  /**
   * Rejects while the cache cannot store a token now: a Redis that is up
   * but refuses writes (maxmemory with noeviction) answers its pings, and
   * only a write tells. Optional; readiness asks it at every probe.
   */
  check? (): Promise<void>
  close? (): Promise<void>
}
