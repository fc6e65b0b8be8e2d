import { withoutUrlPasswords } from '../http/log-text'

const MAX_KEYS = 10_000

/**
 * Says whether a repeated line should be logged now: once per `key` in each
 * `intervalMs`. A flood repeats the same refusal thousands of times a
 * second; one line per cause and source says as much, and the metrics count
 * every occurrence.
 */
export function logLimiter (intervalMs: number, now: () => number = Date.now): (key: string) => boolean {
  const take = budgetLimiter(intervalMs, 1, now)
  return key => take(key) === 'within'
}

/** Where a key stands in its interval: within its budget, just past it (the first time), or past it. */
export type Budget = 'within' | 'spent' | 'past'

/**
 * Counts `perInterval` lines per `key` in each `intervalMs`, the interval
 * starting at the key's first line: the one after the last is `spent`, the
 * rest `past`, until the interval ends. At most 10,000 keys are held; past
 * that, new keys are `past` until old ones expire.
 */
export function budgetLimiter (intervalMs: number, perInterval: number, now: () => number = Date.now): (key: string) => Budget {
  // In the order their intervals began: the expired ones are always at the front.
  const counts = new Map<string, { since: number, lines: number }>()
  return key => {
    const at = now()
    for (const [k, entry] of counts) {
      if (at - entry.since < intervalMs) break
      counts.delete(k)
    }
    const entry = counts.get(key)
    if (entry === undefined) {
      // Tens of thousands of sources within one interval: the rest are debug lines, and the map stays small.
      if (counts.size >= MAX_KEYS) return 'past'
      counts.set(key, { since: at, lines: 1 })
      return perInterval > 0 ? 'within' : 'spent'
    }
    entry.lines++
    if (entry.lines <= perInterval) return 'within'
    return entry.lines === perInterval + 1 ? 'spent' : 'past'
  }
}

export type RefusalLevel = (outcome: string, address: string | undefined) => 'info' | 'debug'

/** How many of a source's refusals of the kinds in LIMITED each side logs at info per minute. */
export const REFUSAL_LINES_PER_MINUTE = 20

/**
 * Refusals a peer can send as fast as it likes that are not failed
 * authentication (which the throttle counts and cools off): malformed heads
 * and targets, a missing token, early data, a credential that does not
 * parse, a head too large or too slow, plain HTTP on the TLS port.
 */
const LIMITED: ReadonlySet<string> = new Set([
  'malformed_target', 'not_uuid', 'missing_token', 'early_data',
  'bad_credential', 'bad_head',
  'malformed_head', 'head_too_large', 'head_timeout', 'plain_http'
])

export interface RefusalLevelOptions {
  /** Where the line that says a source's refusals go to debug for the rest of the minute is written. */
  log?: { info: (fields: object, message: string) => void }
  /** The side (hidden, mobile...) this limiter counts for, on that line. */
  side?: string
  intervalMs?: number
  perInterval?: number
  now?: () => number
}

/**
 * The level of a refusal's line, so that a flood cannot fill the log. A
 * throttled address is refused for the whole of its cool-off, as fast as it
 * asks: its first throttled refusal in each minute is an info line and the
 * rest are debug lines. The LIMITED refusals get REFUSAL_LINES_PER_MINUTE
 * info lines per source and minute; then one info line (on `log`) says that
 * the rest of the minute's are debug lines. Other refusals are always info
 * lines. The metrics count every one. `keyOf` is what the throttle counts an
 * address under: one IPv6 host that moves through its /64 is one source,
 * and would otherwise get its own lines per address.
 */
export function refusalLevel (keyOf: (address: string) => string = address => address, options: RefusalLevelOptions = {}): RefusalLevel {
  const { log, side, intervalMs = 60_000, perInterval = REFUSAL_LINES_PER_MINUTE, now = Date.now } = options
  const throttled = logLimiter(intervalMs, now)
  const limited = budgetLimiter(intervalMs, perInterval, now)
  return (outcome, address) => {
    const source = address === undefined ? 'unknown' : keyOf(address)
    if (outcome === 'throttled') return throttled(source) ? 'info' : 'debug'
    if (!LIMITED.has(outcome)) return 'info'
    const budget = limited(source)
    if (budget === 'within') return 'info'
    if (budget === 'spent') {
      const subnet = source === address ? {} : { subnet: source }
      log?.info({ ...(side === undefined ? {} : { side }), address, ...subnet, outcome, max: perInterval },
        'too many refusals from this address: the rest of this minute\'s are logged at debug (the metrics count them all)')
    }
    return 'debug'
  }
}

/** How much of a failure's message a warning quotes: enough to name the cause, not a dump. */
const REASON_CHARS = 300

/**
 * Hands each distinct failure to `report` once per `intervalMs`, as its
 * message cut to REASON_CHARS with the passwords of any URL in it taken out
 * (withoutUrlPasswords): a store that fails does so on every command, and
 * the same reason once a minute says as much.
 */
export function failureReporter (intervalMs: number, report: (why: string) => void): (err: unknown) => void {
  const reportNow = logLimiter(intervalMs)
  return err => {
    const why = withoutUrlPasswords(String((err as Error | undefined)?.message ?? err)).slice(0, REASON_CHARS)
    if (reportNow(why)) report(why)
  }
}
