const MAX_KEYS = 10_000

/**
 * Says whether a repeated line should be logged now: once per `key` in each
 * `intervalMs`. A flood repeats the same refusal thousands of times a
 * second; one line per cause and source says as much, and the metrics count
 * every occurrence.
 */
export function logLimiter (intervalMs: number, now: () => number = Date.now): (key: string) => boolean {
  // In the order logged: a key is set only when its line goes out, so the expired ones are always at the front.
  const last = new Map<string, number>()
  return key => {
    const at = now()
    for (const [k, t] of last) {
      if (at - t < intervalMs) break
      last.delete(k)
    }
    if (last.has(key)) return false
    // Tens of thousands of sources within one interval: the rest are debug lines, and the map stays small.
    if (last.size >= MAX_KEYS) return false
    last.set(key, at)
    return true
  }
}

export type RefusalLevel = (outcome: string, address: string | undefined) => 'info' | 'debug'

/**
 * The level of a refusal's line. A throttled address is refused for the
 * whole of its cool-off, as fast as it asks; its first refusal in each
 * minute is an info line and the rest are debug lines (the metrics count
 * every one). Other refusals are always info lines. `keyOf` is what the
 * throttle counts an address under: one IPv6 host that moves through its
 * /64 is one throttled source, and would otherwise get a line per address.
 */
export function refusalLevel (keyOf: (address: string) => string = address => address, intervalMs = 60_000): RefusalLevel {
  const logNow = logLimiter(intervalMs)
  return (outcome, address) => outcome !== 'throttled' || logNow(address === undefined ? 'unknown' : keyOf(address)) ? 'info' : 'debug'
}
