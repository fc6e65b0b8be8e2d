import { MemoryThrottleStore } from '../stores/memory-throttle-store'
import type { ThrottleStore } from '../stores/throttle-store'
import { RoomWaits } from './room-waits'

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
  /**
   * How long a CONNECT that finds no room on its counters (attempts of the
   * same address or ID being judged right now) waits for room before it
   * gets 429, in ms. 0 answers 429 at once. Default 2000.
   */
  roomWait?: number
  /** @deprecated Use `window`: every duration option is in ms. */
  windowMs?: number
  /** @deprecated Use `coolOff`: every duration option is in ms. */
  coolOffMs?: number
}

export type ResolvedAuthFailureLimits = Required<Omit<AuthFailureLimits, 'windowMs' | 'coolOffMs' | 'roomWait'>> & Pick<AuthFailureLimits, 'roomWait'>

/** How long an address that had a TOTP code accepted for an ID is exempt from that ID's per-ID TOTP counter. */
export const KNOWN_SENDER_MS = 24 * 3600_000

/** Which limit a failure reached: the address and ID, the address, or the ID's TOTP codes from everywhere. */
export type TrippedCounter = 'pair' | 'address' | 'id_totp'

/** An attempt let through to have its token judged (see AuthThrottle.admit). */
export interface Admission {
  /** The token was wrong: counted as failAndTell counts it; the attempt stays held for its window (at most a cool-off). */
  failed: () => Promise<{ coolOff: number, tripped: TrippedCounter[] }>
  /** The token was good, or not judged after all (a 503, a client gone): the attempt is no longer held. */
  release: () => Promise<void>
}

/** Let through; to be answered 429 with `coolOff` seconds in Retry-After; or given up, the client being answered or gone. */
export type AdmitResult = { admission: Admission } | { coolOff: number } | { gone: true }

/**
 * How long an attempt waits at most for room on its counters (unless
 * `roomWait` says otherwise), then the pauses between its looks when no
 * attempt ending on this node wakes it. Room is made within a token's
 * judging (a Redis round trip or two); an attempt still without room after
 * this is answered 429.
 */
export const ROOM_WAIT_MS = 2000
const FIRST_PAUSE_MS = 10
const LONGEST_PAUSE_MS = 250

/**
 * Each counter has two counts. The failures trip its cool-off; the held
 * attempts (failures, and those being judged now) bound what may be judged.
 * One count would not do: a failure among attempts being judged would trip
 * the counter for attempts that then turn out good.
 */
interface Counter {
  key: string
  held: string
  limit: number
  counter: TrippedCounter
}

type Holds = Required<Pick<ThrottleStore, 'hit' | 'refund'>>

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
 *
 * An attempt is counted before its token is judged (admit), and taken back
 * when the token proves good: counted only after, every attempt in flight
 * at once would pass the check before any failure was counted, and with a
 * shared store (a Redis round trip each) that is every attempt a client
 * sends at once.
 */
export class AuthThrottle {
  readonly #store: ThrottleStore
  readonly #holds: Holds
  readonly #waits = new RoomWaits()
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
    // A store that cannot take a hit back holds attempts in this node's memory: each node judges no more than the limits then.
    this.#holds = typeof store.refund === 'function' ? store as Holds : new MemoryThrottleStore()
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
    return await this.#blockedFor(await this.#gating(address, id, guessable))
  }

  /**
   * Lets an attempt through to have its token judged once its counters have
   * room, counting it first; the caller then says how it ended. Without room,
   * it waits for attempts being judged to end (up to `roomWait`), so that an
   * agent pool opening more connections at once than a limit has room for
   * is let through a few at a time, not refused. `gone` ends the wait early.
   */
  async admit (address: string, id: string, guessable = false, gone: () => boolean = () => false): Promise<AdmitResult> {
    const counters = await this.#gating(address, id, guessable)
    const deadline = Date.now() + (this.#limits.roomWait ?? ROOM_WAIT_MS)
    for (let pause = FIRST_PAUSE_MS; ; pause = Math.min(2 * pause, LONGEST_PAUSE_MS)) {
      if (gone()) return { gone: true }
      const coolOff = await this.#blockedFor(counters)
      if (coolOff > 0) return { coolOff }
      if (await this.#hold(counters)) return { admission: this.#admission(counters, address, id, guessable) }
      // Still full: of attempts being judged, here or on other nodes, or of failures whose cool-off ended before their window.
      const left = deadline - Date.now()
      if (left <= 0) return { coolOff: 1 }
      await this.#waits.wait(counters.map(({ held }) => held), Math.min(pause, left))
    }
  }

  /**
   * Counts a failure that has nothing to judge (a request naming an unknown
   * ID) before it is answered: 0 when it is to be answered as a failure, else
   * seconds of cool-off to answer instead. Counted first, attempts at once
   * each learn their own place in the count, so no more than the limit are
   * answered as failures; the one that reaches it still is.
   */
  async failFirst (address: string, id: string): Promise<number> {
    const waiting = await this.check(address, id)
    if (waiting > 0) return waiting
    const counts = await this.#count(this.#counters(address, id, false))
    // Without a cool-off a limit refuses nothing, as in failAndTell.
    return this.#limits.coolOff > 0 && counts.some(({ count, limit }) => count > limit) ? seconds(this.#limits.coolOff) : 0
  }

  // The counters an attempt is held to: those of check().
  async #gating (address: string, id: string, guessable: boolean): Promise<Counter[]> {
    const counters = this.#counters(address, id, guessable)
    if (counters.some(({ counter }) => counter === 'id_totp') && await this.#store.blockedFor(this.#knownKey(address, id)) > 0) {
      return counters.filter(({ counter }) => counter !== 'id_totp')
    }
    return counters
  }

  async #blockedFor (counters: Counter[]): Promise<number> {
    const waits = await Promise.all(counters.map(({ key }) => this.#store.blockedFor(key)))
    return seconds(Math.max(0, ...waits))
  }

  // Without a window or a cool-off nothing is ever refused, so nothing needs holding.
  #holding (): boolean {
    return this.#limits.window > 0 && this.#limits.coolOff > 0
  }

  /** Counts the attempt on each counter; true when each had room for it, else it is taken back from all. */
  async #hold (counters: Counter[]): Promise<boolean> {
    if (!this.#holding() || counters.length === 0) return true
    // Held no longer than a cool-off lasts: once a tripped counter's cool-off ends, attempts may be judged again
    // (a failure trips it anew), even where failures from earlier in a longer window are still counted.
    const heldFor = Math.min(this.#limits.window, this.#limits.coolOff)
    const counts = await Promise.allSettled(counters.map(async ({ held }) => await this.#holds.hit(held, heldFor)))
    if (counts.every((count, i) => count.status === 'fulfilled' && count.value <= counters[i]!.limit)) return true
    await this.#release(counters.filter((_, i) => counts[i]!.status === 'fulfilled'))
    const failed = counts.find(count => count.status === 'rejected')
    if (failed !== undefined) throw failed.reason
    return false
  }

  async #release (counters: Counter[]): Promise<void> {
    const refunds = await Promise.allSettled(counters.map(async ({ held }) => { await this.#holds.refund(held) }))
    for (const { held } of counters) this.#waits.wakeOne(held)
    const failed = refunds.find(refund => refund.status === 'rejected')
    if (failed !== undefined) throw failed.reason
  }

  #admission (counters: Counter[], address: string, id: string, guessable: boolean): Admission {
    let ended = false
    const end = (): boolean => {
      const first = !ended
      ended = true
      return first
    }
    const held = this.#holding() ? counters : []
    return {
      failed: async () => {
        if (!end()) return { coolOff: 0, tripped: [] }
        const told = await this.failAndTell(address, id, guessable)
        // Waiting on a counter that just tripped is waiting for nothing: they are answered 429 now.
        for (const { held: key, counter } of this.#counters(address, id, guessable)) {
          if (told.tripped.includes(counter)) this.#waits.wakeAll(key)
        }
        return told
      },
      release: async () => {
        if (end()) await this.#release(held)
      }
    }
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
    const tripped = (await this.#count(this.#counters(address, id, guessable)))
      .filter(({ count, limit }) => count >= limit && this.#limits.coolOff > 0)
      .map(({ counter }) => counter)
    return { coolOff: tripped.length > 0 ? seconds(this.#limits.coolOff) : 0, tripped }
  }

  /** Records a failure on each counter, cooling off those it brings to their limit; each counter's count after it. */
  async #count (counters: Counter[]): Promise<Array<Counter & { count: number }>> {
    const { window: windowMs, coolOff: coolOffMs } = this.#limits
    // A zero window holds no failures, so nothing could ever trip.
    if (windowMs <= 0) return []
    return await Promise.all(counters.map(async counter => {
      const count = await this.#store.hit(counter.key, windowMs)
      if (count >= counter.limit && coolOffMs > 0) await this.#store.block(counter.key, coolOffMs)
      return { ...counter, count }
    }))
  }

  // IDs are matched case-insensitively everywhere, so they are counted so too:
  // changing the case of an ID must not buy fresh guesses.
  // The per-ID counter is for guessable tokens only: counting v1 failures per ID would let anyone who
  // knows an ID lock its agent out, for no gain, since a v1 token cannot be guessed.
  #counters (address: string, id: string, guessable: boolean): Counter[] {
    const addr = this.#keyOf(address)
    const counters: Counter[] = []
    const add = (name: string, limit: number, counter: TrippedCounter): void => {
      counters.push({ key: `${this.#prefix}:${name}`, held: `${this.#prefix}:held:${name}`, limit, counter })
    }
    if (this.#limits.perPair > 0) add(`pair:${addr}|${id.toLowerCase()}`, this.#limits.perPair, 'pair')
    if (this.#limits.perAddress > 0) add(`addr:${addr}`, this.#limits.perAddress, 'address')
    if (guessable && this.#limits.perIdTotp > 0) add(`totp:${id.toLowerCase()}`, this.#limits.perIdTotp, 'id_totp')
    return counters
  }
}
