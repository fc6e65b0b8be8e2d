/** How often the same peer failure is a warning; the repeats are debug lines. */
export const WARN_EVERY_MS = 60_000

/** What a 401 between nodes usually means, added to its log lines on both sides. */
export const SECRET_HINT = ' (is --cluster-secret the same on every node?)'

/**
 * Says whether a repeated warning should be logged now: once per `key` in
 * each `intervalMs`. A misconfigured peer fails every ask while clients wait
 * (four times a second per client); one line a minute says as much, and the
 * metrics count every occurrence.
 */
export function logLimiter (intervalMs: number, now: () => number = Date.now): (key: string) => boolean {
  const last = new Map<string, number>()
  return key => {
    const at = now()
    const previous = last.get(key)
    if (previous !== undefined && at - previous < intervalMs) return false
    // Forget old keys, so addresses that come and go do not grow the map.
    if (last.size > 1000) for (const [k, t] of last) if (at - t >= intervalMs) last.delete(k)
    last.set(key, at)
    return true
  }
}
