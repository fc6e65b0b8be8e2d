/**
 * Exponential backoff with full jitter: each delay is uniform in
 * [0, min(max, base * 2^attempt)]. Full jitter spreads many agents that lost
 * the same server apart, so they do not all come back in the same instant.
 */
export interface BackoffOptions {
  base?: number
  max?: number
  random?: () => number
}

// 2^31 already exceeds any sane cap; stopping here keeps the product finite.
const MAX_EXPONENT = 31

export class Backoff {
  readonly base: number
  readonly max: number
  readonly #random: () => number
  #attempt = 0

  constructor (opts: BackoffOptions = {}) {
    this.base = opts.base ?? 250
    this.max = opts.max ?? 30_000
    this.#random = opts.random ?? Math.random
  }

  /** How many delays were handed out since the last reset. */
  get attempts (): number {
    return this.#attempt
  }

  next (): number {
    const ceiling = Math.min(this.max, this.base * 2 ** Math.min(this.#attempt, MAX_EXPONENT))
    this.#attempt++
    return Math.floor(this.#random() * ceiling)
  }

  reset (): void {
    this.#attempt = 0
  }
}

// A hostile or confused server must not park the agent for days.
const MAX_RETRY_AFTER_MS = 60 * 60 * 1000

/*
 * What a Retry-After the agent honours may reach, whatever backoffMax is: a
 * minute covers what the relay itself asks, 5 s for a 503 and, by default,
 * 60 s of cool-off for a 429.
 */
const RETRY_AFTER_FLOOR_MS = 60 * 1000

/**
 * How long the agent waits for a server's Retry-After: all of it, up to the
 * larger of backoffMax and a minute. No probe ends such a wait, so a relay
 * that restarts meanwhile (and so forgets why it asked) would otherwise be
 * missed for as long as any box at its address once asked, up to an hour.
 */
export function honouredRetryAfter (retryAfter: number | undefined, backoffMax: number): number | undefined {
  return retryAfter === undefined ? undefined : Math.min(retryAfter, Math.max(backoffMax, RETRY_AFTER_FLOOR_MS))
}

/** Retry-After (delta-seconds or an HTTP-date) in ms, or undefined when absent or unreadable. */
export function parseRetryAfter (value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined
  const text = value.trim()
  let ms: number
  if (/^\d+$/.test(text)) {
    ms = Number(text) * 1000
  } else {
    // Date.parse takes bare numbers such as "-3" for years; an HTTP-date always names its month.
    if (!/[A-Za-z]{3}/.test(text)) return undefined
    const date = Date.parse(text)
    if (Number.isNaN(date)) return undefined
    ms = date - now
  }
  return Math.min(Math.max(ms, 0), MAX_RETRY_AFTER_MS)
}
