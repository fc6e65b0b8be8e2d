import type { ThrottleStore } from '../stores/throttle-store'

export interface AuthFailureLimits {
  /** Failures per (client address, ID) within `window` before that pair is cooled off. */
  perPair?: number
  /** Failures per client address, across all IDs, within `window` before the address is cooled off. */
  perAddress?: number
  /**
   * Failed TOTP codes per ID, from every address, within `window` before
   * TOTP codes for that ID are cooled off (v1 tokens are not). A 6-digit
   * code can be guessed from enough addresses; this bounds the guesses.
   */
  perIdTotp?: number
  /** How long a failure counts, in ms. */
  window?: number
  /** How long a tripped counter refuses, in ms. */
  coolOff?: number
  /** @deprecated Use `window`: every duration option is in ms. */
  windowMs?: number
  /** @deprecated Use `coolOff`: every duration option is in ms. */
  coolOffMs?: number
}

export type ResolvedAuthFailureLimits = Required<Omit<AuthFailureLimits, 'windowMs' | 'coolOffMs'>>

/** How long an address that had a TOTP code accepted for an ID is exempt from that ID's per-ID TOTP counter. */
export const KNOWN_SENDER_MS = 24 * 3600_000

/** Which limit a failure reached: the address and ID, the address, or the ID's TOTP codes from everywhere. */
export type TrippedCounter = 'pair' | 'address' | 'id_totp'

const MAPPED_IPV4 = /^::ffff:(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/i

/**
 * The form an address is counted under. A dual-stack listener reports IPv4
 * peers as ::ffff:a.b.c.d; without this a client could double its budget by
 * reaching us over both stacks, and limits set for a.b.c.d would not apply.
 */
export function normaliseAddress (address: string): string
export function normaliseAddress (address: string | undefined): string | undefined
export function normaliseAddress (address: string | undefined): string | undefined {
  if (address === undefined) return undefined
  const mapped = MAPPED_IPV4.exec(address)
  return mapped !== null ? mapped[1]! : address.toLowerCase()
}

function seconds (ms: number): number {
  return ms > 0 ? Math.max(1, Math.ceil(ms / 1000)) : 0
}

/**
 * Brute-force protection for CONNECT (docs/protocol.md). The pair counter stops
 * guessing one ID's token; the address counter stops a client scanning many
 * IDs at a few guesses each, which the pair counter alone would never see.
 */
export class AuthThrottle {
  readonly #store: ThrottleStore
  readonly #limits: ResolvedAuthFailureLimits
  readonly #prefix: string
  readonly #keyOf: (address: string) => string

  /**
   * `prefix` keeps separate budgets apart in one store (CONNECT failures,
   * unknown-ID probes); `keyOf` is what an address counts under (its IPv6
   * subnet, see address-group.ts).
   */
  constructor (store: ThrottleStore, limits: ResolvedAuthFailureLimits, prefix = 'authfail', keyOf: (address: string) => string = normaliseAddress) {
    this.#store = store
    this.#limits = { ...limits }
    this.#prefix = prefix
    this.#keyOf = keyOf
  }

  /** What `address` counts under here: itself, or its IPv6 subnet. */
  sourceOf (address: string): string {
    return this.#keyOf(address)
  }

  /** 0 when allowed, else seconds to put in Retry-After (>=1). `guessable`: the token is a TOTP code. */
  async check (address: string, id: string, guessable = false): Promise<number> {
    let counters = this.#counters(address, id, guessable)
    if (counters.some(({ counter }) => counter === 'id_totp') && await this.#store.blockedFor(this.#knownKey(address, id)) > 0) {
      counters = counters.filter(({ counter }) => counter !== 'id_totp')
    }
    const waits = await Promise.all(counters.map(({ key }) => this.#store.blockedFor(key)))
    return seconds(Math.max(0, ...waits))
  }

  /**
   * Records a TOTP code accepted for `id` from this address (or IPv6
   * subnet): for KNOWN_SENDER_MS its TOTP codes for the ID are not held back
   * by the per-ID counter. Without it, anyone who knows an ID could keep
   * its hidden server out with a few wrong codes from a few addresses; a
   * hidden server that parked before keeps parking, and a guesser, who has
   * never had a code accepted, is still held back.
   */
  async accepted (address: string, id: string): Promise<void> {
    if (this.#limits.perIdTotp > 0) await this.#store.block(this.#knownKey(address, id), KNOWN_SENDER_MS)
  }

  #knownKey (address: string, id: string): string {
    return `${this.#prefix}:totpok:${this.#keyOf(address)}|${id.toLowerCase()}`
  }

  /** Records a failed authentication; returns seconds of cool-off if this failure tripped a limit, else 0. */
  async fail (address: string, id: string, guessable = false): Promise<number> {
    return (await this.failAndTell(address, id, guessable)).coolOff
  }

  /** fail(), also naming the counters this failure tripped: each cools off a different set of attempts. */
  async failAndTell (address: string, id: string, guessable = false): Promise<{ coolOff: number, tripped: TrippedCounter[] }> {
    const { window: windowMs, coolOff: coolOffMs } = this.#limits
    // A zero window holds no failures, so nothing could ever trip.
    if (windowMs <= 0) return { coolOff: 0, tripped: [] }
    const tripped = await Promise.all(this.#counters(address, id, guessable).map(async ({ key, limit, counter }) => {
      const count = await this.#store.hit(key, windowMs)
      if (count < limit || coolOffMs <= 0) return undefined
      await this.#store.block(key, coolOffMs)
      return counter
    }))
    const named = tripped.filter(counter => counter !== undefined)
    return { coolOff: named.length > 0 ? seconds(coolOffMs) : 0, tripped: named }
  }

  // IDs are matched case-insensitively everywhere, so they are counted so too:
  // changing the case of an ID must not buy fresh guesses.
  // The per-ID counter is for guessable tokens only: counting v1 failures per ID would let anyone who
  // knows an ID lock its agent out, for no gain, since a v1 token cannot be guessed.
  #counters (address: string, id: string, guessable: boolean): Array<{ key: string, limit: number, counter: TrippedCounter }> {
    const addr = this.#keyOf(address)
    const counters: Array<{ key: string, limit: number, counter: TrippedCounter }> = []
    if (this.#limits.perPair > 0) counters.push({ key: `${this.#prefix}:pair:${addr}|${id.toLowerCase()}`, limit: this.#limits.perPair, counter: 'pair' })
    if (this.#limits.perAddress > 0) counters.push({ key: `${this.#prefix}:addr:${addr}`, limit: this.#limits.perAddress, counter: 'address' })
    if (guessable && this.#limits.perIdTotp > 0) counters.push({ key: `${this.#prefix}:totp:${id.toLowerCase()}`, limit: this.#limits.perIdTotp, counter: 'id_totp' })
    return counters
  }
}
