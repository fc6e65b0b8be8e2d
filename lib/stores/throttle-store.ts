/**
 * Counts failures per key in a sliding window and holds cool-offs. The
 * in-memory store serves one node; a Redis store shares it in cluster mode.
 */
export interface ThrottleStore {
  /** Records one failure and returns how many fell within the last `windowMs`. */
  hit (key: string, windowMs: number): Promise<number>
  /** Blocks `key` for `ms`. */
  block (key: string, ms: number): Promise<void>
  /** Milliseconds left on the key's cool-off, 0 when it is not blocked. */
  blockedFor (key: string): Promise<number>
  close? (): Promise<void>
}
