import { timingSafeEqual } from 'node:crypto'
import { decodeSecret, generateSecret } from '../registry/ids'
import type { TokenVerdict, TotpMode } from './verdict'
import type { ReplayCache } from '../stores/replay-cache'
import { isTotpCode, matchTotp, TOTP_STEP_MS } from './totp'
import { parseV1Token, v1Mac } from './v1'
import { ReplayShare } from './replay-share'

export interface DefaultVerifierOptions {
  /** The base32 secret of a canonical ID, or undefined when the ID is unknown. */
  lookupSecret: (id: string) => string | undefined
  /** The secrets an ID had before its rotations, those whose overlap lasts. */
  lookupPreviousSecrets?: (id: string) => readonly string[]
  replayCache: ReplayCache
  totp: TotpMode
  /** Largest accepted |server clock - token clock| for v1 tokens, in seconds. */
  skewSeconds: number
  /**
   * Live tokens one ID may hold in the replay cache before its share binds
   * (replay-share.ts); 0 or absent: no share. Only for a cache with `room()`.
   */
  replayCachePerId?: number
  /** Clock in ms since the epoch. Default Date.now. */
  now?: () => number
  /** Hears why the replay cache failed a token (which is then refused with 503): the refusal alone says only that it did. */
  onCacheError?: (err: unknown) => void
}

export type RejectReason =
  | 'unknown_id' | 'malformed' | 'bad_mac' | 'stale' | 'replayed' | 'wrong_code' | 'totp_off'
  | 'replay_cache_full' | 'replay_share_full' | 'replay_cache_error' | 'no_room' | 'revoked'

/**
 * Asked synchronously as an accepted CONNECT is parked: why the ID or the
 * secret its token was checked against is no longer accepted, if it is not.
 * Spending a token awaits the replay cache (Redis, a journal, the app's own
 * store), and meanwhile the ID may be removed or the secret revoked; the
 * registry's eviction only closes what is already parked.
 */
export type Recheck = () => 'unknown_id' | 'revoked' | undefined

/** A verdict as the relay uses it: an acceptance may carry its recheck. */
export type Verdict = Exclude<TokenVerdict, { ok: true }> | { ok: true, kind?: string, recheck?: Recheck }

/** What the caller of one verification knows that the verifier does not. */
export interface VerifyContext {
  /**
   * Whether the connection could be accepted now. Asked once the token is
   * proved good (MAC or code, clock) and before it is spent in the replay
   * cache: false gets `no_room` (503) and leaves the token unspent, so the
   * same token may be sent again once there is room.
   */
  hasRoom?: () => boolean
}

export type Verifier = (id: string, token: string, context?: VerifyContext) => Promise<Verdict>

// Replay entries outlive the acceptance window by this much, because in
// cluster mode the node that checks a replay may run a little behind the one
// that accepted the token, and would otherwise find the entry already gone.
const CLOCK_MARGIN_MS = 5_000

// An empty or tiny key would make MACs forgeable; RFC 4226 asks for 128 bits
// at least. A registry that hands out such a secret gets "unknown_id".
const MIN_SECRET_BYTES = 16

/** A key and the base32 it was decoded from. */
interface Secret { key: Buffer, base32: string }

function refuse (reason: RejectReason, status: 401 | 503 = 401): Verdict {
  return { ok: false, reason, status }
}

export function createDefaultVerifier (opts: DefaultVerifierOptions): Verifier {
  const { lookupSecret, replayCache, totp, skewSeconds } = opts
  const now = opts.now ?? Date.now
  if (!Number.isFinite(skewSeconds) || skewSeconds < 0) throw new RangeError('skewSeconds must be a non-negative number')
  if (!['strict', 'reuse', 'off'].includes(totp)) throw new RangeError(`unknown totp mode ${String(totp)}`)
  // Unknown IDs go through the same decode and HMAC work with this key, so
  // response times do not tell an attacker which IDs exist.
  const dummySecret = generateSecret()
  const dummyKey = decodeSecret(dummySecret)
  const share = new ReplayShare({ share: opts.replayCachePerId ?? 0, room: opts.replayCache.room?.bind(opts.replayCache) })

  function keyFor (id: string): Secret & { known: boolean } {
    const base32 = lookupSecret(id)
    let key: Buffer | undefined
    try {
      key = decodeSecret(base32 ?? dummySecret)
    } catch {
      // A secret the registry cannot decode must not become an empty key.
    }
    if (base32 !== undefined && key !== undefined && key.length >= MIN_SECRET_BYTES) return { key, base32, known: true }
    return { key: dummyKey, base32: dummySecret, known: false }
  }

  // Secrets are compared in their base32 form: the registry hands out each one in a single canonical spelling.
  function recheckFor (id: string, used: string): Recheck {
    return () => {
      const current = lookupSecret(id)
      if (current === undefined) return 'unknown_id'
      return current === used || (opts.lookupPreviousSecrets?.(id) ?? []).includes(used) ? undefined : 'revoked'
    }
  }

  // Spends a good token: the replay cache, not hasRoom, decides between two
  // CONNECTs that carry the same token at once, so exactly one is accepted.
  async function spend (id: string, key: string, ttlMs: number, accepted: Verdict & { ok: true }, context: VerifyContext): Promise<Verdict> {
    // A token answered "try later" was never accepted, so it must stay good for the retry.
    if (context.hasRoom?.() === false) return refuse('no_room', 503)
    // Taken before the cache is asked, so that CONNECTs of one ID sent at once cannot all pass.
    const askedAt = now()
    const place = share.reserve(id, askedAt)
    if (place === 'share') return refuse('replay_share_full', 503)
    let answer
    try {
      answer = await replayCache.remember(key, ttlMs)
    } catch (err) {
      place.release()
      opts.onCacheError?.(err)
      // Without a working replay cache we cannot tell a replay from a fresh
      // token, so we fail closed exactly as when the cache is full.
      return refuse('replay_cache_error', 503)
    }
    // A ttl of 0 is kept by no cache: nothing to count.
    if (answer === 'fresh' && ttlMs > 0) place.keep(askedAt + ttlMs)
    else place.release()
    if (answer === 'fresh') return accepted
    if (answer === 'replayed') return refuse('replayed')
    return refuse('replay_cache_full', 503)
  }

  // A rotated ID's old secrets, while their overlaps last; never a dummy, so unknown IDs cost the same.
  function previousKeysFor (id: string): Secret[] {
    const keys: Secret[] = []
    for (const base32 of opts.lookupPreviousSecrets?.(id) ?? []) {
      try {
        const key = decodeSecret(base32)
        if (key.length >= MIN_SECRET_BYTES) keys.push({ key, base32 })
      } catch {
        // A secret the registry cannot decode is no key at all.
      }
    }
    return keys
  }

  async function verifyV1 (id: string, token: string, { key, base32, known }: Secret & { known: boolean }, context: VerifyContext): Promise<Verdict> {
    const parsed = parseV1Token(token)
    if (parsed === undefined) return refuse('malformed')
    // Comparing the base64url text also refuses non-canonical encodings of
    // the same MAC, so one token has exactly one spelling.
    const macMatches = (k: Buffer): boolean =>
      timingSafeEqual(Buffer.from(v1Mac(id, k, parsed.secondsText, parsed.nonce).toString('base64url')), Buffer.from(parsed.mac))
    const used = macMatches(key) ? base32 : known ? previousKeysFor(id).find(p => macMatches(p.key))?.base32 : undefined
    if (!known) return refuse('unknown_id')
    if (used === undefined) return refuse('bad_mac')
    const nowMs = now()
    // Whole seconds on both sides: the sender floors its clock too.
    if (Math.abs(Math.floor(nowMs / 1000) - parsed.seconds) > skewSeconds) return refuse('stale')
    // The token stays acceptable until the server clock's second passes
    // seconds + skew; the entry must live at least that long.
    const ttlMs = (parsed.seconds + skewSeconds + 1) * 1000 - nowMs + CLOCK_MARGIN_MS
    return await spend(id, `v1:${id}:${parsed.nonce}`, ttlMs, { ok: true, kind: 'v1', recheck: recheckFor(id, used) }, context)
  }

  async function verifyTotp (id: string, token: string, { key, base32, known }: Secret & { known: boolean }, context: VerifyContext): Promise<Verdict> {
    if (totp === 'off') return refuse('totp_off')
    const nowMs = now()
    let match = matchTotp(key, token, nowMs)
    let used = base32
    for (const previous of known ? previousKeysFor(id) : []) {
      if (match !== undefined) break
      match = matchTotp(previous.key, token, nowMs)
      used = previous.base32
    }
    if (!known) return refuse('unknown_id')
    if (match === undefined) return refuse('wrong_code')
    const accepted = { ok: true as const, kind: 'totp', recheck: recheckFor(id, used) }
    if (totp === 'reuse') return accepted
    // Each (ID, step, code) once, as the protocol says: a step's 6, 7 and
    // 8-digit codes are three codes. The shorter ones are the last digits of
    // the 8-digit one, so a seen 8-digit code can be replayed shortened
    // within its window (docs/security.md).
    // Step s is accepted until the current step reaches s + 2.
    const ttlMs = (match.step + 2) * TOTP_STEP_MS - nowMs + CLOCK_MARGIN_MS
    return await spend(id, `totp:${id}:${match.step}:${token}`, ttlMs, accepted, context)
  }

  return async function verifyToken (id: string, token: string, context: VerifyContext = {}): Promise<Verdict> {
    const canonical = id.toLowerCase()
    if (typeof token !== 'string') return refuse('malformed')
    const secret = keyFor(canonical)
    if (token.startsWith('v1.')) return await verifyV1(canonical, token, secret, context)
    if (isTotpCode(token)) return await verifyTotp(canonical, token, secret, context)
    return refuse('malformed')
  }
}

/**
 * Turns what a user-supplied verifier returned into a full verdict. Anything
 * that is not plainly a success is a refusal, so a verifier that returns
 * undefined by mistake cannot let a connection in.
 */
export function normaliseVerdict (v: boolean | TokenVerdict): TokenVerdict {
  if (v === true) return { ok: true, kind: 'custom' }
  if (typeof v === 'object' && v !== null) {
    if (v.ok === true) return { ok: true, kind: typeof v.kind === 'string' && v.kind !== '' ? v.kind : 'custom' }
    if (v.ok === false) {
      return {
        ok: false,
        reason: typeof v.reason === 'string' && v.reason !== '' ? v.reason : 'rejected',
        status: v.status === 503 ? 503 : 401
      }
    }
  }
  return { ok: false, reason: 'rejected', status: 401 }
}
