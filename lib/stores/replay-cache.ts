export type ReplayVerdict = 'fresh' | 'replayed' | 'full'

/**
 * Remembers accepted one-time tokens for as long as they could be replayed.
 * It must never forget a key inside its ttl: when it has no room it answers
 * 'full', and the caller refuses the token (fail closed).
 */
export interface ReplayCache {
  remember (key: string, ttlMs: number): Promise<ReplayVerdict>
  close? (): Promise<void>
}
