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
  /**
   * Takes back the latest hit() of `key`, for an attempt counted before it
   * was judged that turned out not to be a failure. A key with no hits is
   * left alone: never created, never below zero, and the window of the hits
   * that stay is kept.
   *
   * Optional. Without it the relay holds its attempts to the limits in the
   * node's memory: a node judges no more attempts at once than a counter
   * has room for, and the shared counts and cool-offs still work across
   * nodes as failures are recorded.
   */
  refund? (key: string): Promise<void>
  close? (): Promise<void>
}
