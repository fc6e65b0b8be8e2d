import t from 'tap'
import { createHmac, randomBytes } from 'node:crypto'
import { createDefaultVerifier, normaliseVerdict, type DefaultVerifierOptions, type Recheck, type Verdict, type Verifier } from '../../lib/tokens/verifier'
import { MemoryReplayCache } from '../../lib/stores/memory-replay-cache'
import type { ReplayCache, ReplayVerdict } from '../../lib/stores/replay-cache'
import { RFC_KEY as SECRET } from '../helpers/fixtures'

const ID = '0f8fad5b-d9cb-469f-a165-70867728950e'
const SECRET_B32 = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ'
const START = 1_700_000_000_000

// Tokens are built here from node:crypto alone, not with lib/tokens.
function v1 (seconds: number | string, opts: { id?: string, key?: Buffer, nonce?: string } = {}): string {
  const nonce = opts.nonce ?? randomBytes(16).toString('base64url')
  const mac = createHmac('sha256', opts.key ?? SECRET)
    .update(`rendezvous-v1\n${(opts.id ?? ID).toLowerCase()}\n${seconds}\n${nonce}`)
    .digest('base64url')
  return `v1.${seconds}.${nonce}.${mac}`
}

function totp (ms: number, digits = 6, key = SECRET): string {
  const counter = Buffer.alloc(8)
  counter.writeBigUInt64BE(BigInt(Math.floor(ms / 30_000)))
  const mac = createHmac('sha1', key).update(counter).digest()
  const bin = mac.readUInt32BE(mac[19]! & 0x0f) & 0x7fffffff
  return String(bin % 10 ** digits).padStart(digits, '0')
}

class RecordingCache implements ReplayCache {
  calls: Array<{ key: string, ttlMs: number }> = []
  inner: ReplayCache
  constructor (inner: ReplayCache) { this.inner = inner }
  async remember (key: string, ttlMs: number): Promise<ReplayVerdict> {
    this.calls.push({ key, ttlMs })
    return await this.inner.remember(key, ttlMs)
  }
}

function setup (opts: Partial<DefaultVerifierOptions> = {}): { verify: Verifier, cache: RecordingCache, advance: (ms: number) => void, now: () => number } {
  let time = START
  const now = (): number => time
  const cache = new RecordingCache(opts.replayCache ?? new MemoryReplayCache({ now }))
  const verifier = createDefaultVerifier({
    lookupSecret: (id) => (id === ID ? SECRET_B32 : undefined),
    totp: 'strict',
    skewSeconds: 120,
    now,
    ...opts,
    replayCache: cache
  })
  // Verdicts compared whole, without the recheck an acceptance carries (tested on its own below).
  const verify: Verifier = async (...args) => {
    const { recheck, ...verdict } = await verifier(...args) as Verdict & { recheck?: Recheck }
    if ((typeof recheck === 'function') !== verdict.ok) throw new Error(`a recheck on acceptances only: ${JSON.stringify(verdict)}`)
    return verdict as Verdict
  }
  return { verify, cache, now, advance: (ms) => { time += ms } }
}

const S = START / 1000

t.test('v1: a valid token is accepted once, then refused as replayed', async (t) => {
  const { verify } = setup()
  const token = v1(S)
  t.same(await verify(ID, token), { ok: true, kind: 'v1' })
  t.same(await verify(ID, token), { ok: false, reason: 'replayed', status: 401 })
  t.same(await verify(ID, v1(S)), { ok: true, kind: 'v1' }, 'another nonce in the same second is fine')
})

t.test('v1: skew boundaries', async (t) => {
  const { verify, advance } = setup()
  t.same(await verify(ID, v1(S - 120)), { ok: true, kind: 'v1' }, '120 s behind')
  t.same(await verify(ID, v1(S + 120)), { ok: true, kind: 'v1' }, '120 s ahead')
  t.same(await verify(ID, v1(S - 121)), { ok: false, reason: 'stale', status: 401 }, '121 s behind')
  t.same(await verify(ID, v1(S + 121)), { ok: false, reason: 'stale', status: 401 }, '121 s ahead')
  advance(999)
  t.same(await verify(ID, v1(S - 120)), { ok: true, kind: 'v1' }, 'still the same server second')
  advance(1)
  t.same(await verify(ID, v1(S - 120)), { ok: false, reason: 'stale', status: 401 }, 'the next second')
})

t.test('v1: skewSeconds is honoured', async (t) => {
  const { verify } = setup({ skewSeconds: 5 })
  t.equal((await verify(ID, v1(S - 5))).ok, true)
  t.same(await verify(ID, v1(S - 6)), { ok: false, reason: 'stale', status: 401 })
})

t.test('v1: the replay entry covers the whole window of the token', async (t) => {
  for (const offset of [-120, 0, 120]) {
    const { verify, advance } = setup()
    const token = v1(S + offset)
    t.equal((await verify(ID, token)).ok, true)
    // The last ms at which the server would still take this token.
    advance((offset + 120 + 1) * 1000 - 1)
    t.same(await verify(ID, token), { ok: false, reason: 'replayed', status: 401 }, `offset ${offset}`)
    advance(1)
    t.same(await verify(ID, token), { ok: false, reason: 'stale', status: 401 })
  }
})

t.test('v1: the seconds are used exactly as sent', async (t) => {
  const { verify } = setup()
  t.same(await verify(ID, v1(`000${S}`)), { ok: true, kind: 'v1' })
  t.same(await verify(ID, v1(String(S).padStart(20, '0'))), { ok: true, kind: 'v1' }, 'a fixed 20-digit width, as some senders print it')
  t.same(await verify(ID, v1(String(S).padStart(32, '0'))), { ok: true, kind: 'v1' }, '32 characters in all')
  t.same(await verify(ID, v1(String(S).padStart(33, '0'))), { ok: false, reason: 'malformed', status: 401 }, 'past 32, malformed')
  const forged = v1(S).replace(`v1.${S}.`, `v1.0${S}.`)
  t.same(await verify(ID, forged), { ok: false, reason: 'bad_mac', status: 401 })
})

t.test('v1: wrong MACs are refused and never reach the replay cache', async (t) => {
  const { verify, cache } = setup()
  const good = v1(S)
  const flipped = good.slice(0, -2) + (good.at(-2) === 'A' ? 'B' : 'A') + good.at(-1)!
  t.same(await verify(ID, flipped), { ok: false, reason: 'bad_mac', status: 401 })
  t.same(await verify(ID, v1(S, { key: randomBytes(20) })), { ok: false, reason: 'bad_mac', status: 401 })
  t.same(await verify(ID, v1(S, { id: 'other' })), { ok: false, reason: 'bad_mac', status: 401 })
  t.equal(cache.calls.length, 0)
})

t.test('v1: a non-canonical spelling of the MAC is refused', async (t) => {
  const { verify } = setup()
  const good = v1(S)
  const last = good.at(-1)!
  // The 43rd character carries 2 unused bits; changing them keeps the bytes.
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  const twin = alphabet[alphabet.indexOf(last) ^ 1]!
  const variant = good.slice(0, -1) + twin
  t.same(Buffer.from(variant.split('.')[3]!, 'base64url'), Buffer.from(good.split('.')[3]!, 'base64url'))
  t.same(await verify(ID, variant), { ok: false, reason: 'bad_mac', status: 401 })
})

t.test('v1: IDs are matched case-insensitively', async (t) => {
  const { verify } = setup()
  t.same(await verify(ID.toUpperCase(), v1(S, { id: ID.toUpperCase() })), { ok: true, kind: 'v1' })
})

t.test('unknown IDs and malformed tokens are refused with 401', async (t) => {
  const { verify, cache } = setup()
  t.same(await verify('nobody', v1(S, { id: 'nobody' })), { ok: false, reason: 'unknown_id', status: 401 })
  t.same(await verify('nobody', totp(START)), { ok: false, reason: 'unknown_id', status: 401 })
  for (const bad of ['', 'v1', 'v1.1.2.3', `v2${v1(S).slice(2)}`, '12345', '123456789', 'abcdef', `${totp(START)} `]) {
    t.same(await verify(ID, bad), { ok: false, reason: 'malformed', status: 401 }, JSON.stringify(bad))
  }
  t.equal(cache.calls.length, 0)
})

t.test('an unknown ID is not checked against a key an attacker could guess', async (t) => {
  const { verify } = setup({ lookupSecret: () => undefined })
  const forged = [v1(S, { key: Buffer.alloc(0) }), v1(S, { key: Buffer.alloc(20) })]
  for (const token of forged) t.same(await verify(ID, token), { ok: false, reason: 'unknown_id', status: 401 })
})

t.test('a secret that is corrupt or too short counts as an unknown ID', async (t) => {
  for (const secret of ['', 'not base32!', 'GEZDGNBVGY3TQOJQ']) {
    const { verify } = setup({ lookupSecret: () => secret })
    t.same(await verify(ID, v1(S, { key: Buffer.alloc(0) })), { ok: false, reason: 'unknown_id', status: 401 }, JSON.stringify(secret))
  }
})

t.test('a full replay cache fails closed with 503', async (t) => {
  const { verify } = setup({ replayCache: new MemoryReplayCache({ maxEntries: 1, now: () => START }) })
  t.equal((await verify(ID, v1(S))).ok, true)
  t.same(await verify(ID, v1(S)), { ok: false, reason: 'replay_cache_full', status: 503 })
  t.same(await verify(ID, totp(START)), { ok: false, reason: 'replay_cache_full', status: 503 })
})

t.test('a failing replay cache fails closed with 503', async (t) => {
  const broken: ReplayCache = { remember: async () => { throw new Error('redis down') } }
  const { verify } = setup({ replayCache: broken })
  t.same(await verify(ID, v1(S)), { ok: false, reason: 'replay_cache_error', status: 503 })
})

t.test('totp strict: each (ID, step, code) once, current step and one either side', async (t) => {
  const { verify, cache } = setup()
  t.same(await verify(ID, totp(START)), { ok: true, kind: 'totp' })
  t.same(await verify(ID, totp(START)), { ok: false, reason: 'replayed', status: 401 })
  t.same(await verify(ID, totp(START - 30_000)), { ok: true, kind: 'totp' }, 'previous step')
  t.same(await verify(ID, totp(START + 30_000, 8)), { ok: true, kind: 'totp' }, 'next step, 8 digits')
  t.same(await verify(ID, totp(START + 30_000, 8)), { ok: false, reason: 'replayed', status: 401 }, 'that 8-digit code again')
  t.same(await verify(ID, totp(START + 30_000, 6)), { ok: true, kind: 'totp' }, 'the same step\'s 6-digit code is another code')
  t.same(await verify(ID, totp(START + 30_000, 6)), { ok: false, reason: 'replayed', status: 401 }, 'and is accepted once too')
  t.same(await verify(ID, totp(START - 60_000)), { ok: false, reason: 'wrong_code', status: 401 })
  t.same(await verify(ID, totp(START + 60_000)), { ok: false, reason: 'wrong_code', status: 401 })
  t.same(await verify(ID, totp(START, 6, randomBytes(20))), { ok: false, reason: 'wrong_code', status: 401 })
  t.equal(cache.calls.length, 7, 'only proven codes reach the cache')
})

t.test('totp strict: a code is remembered until its step can no longer be accepted', async (t) => {
  const { verify, advance, now } = setup()
  const step = Math.floor(START / 30_000)
  const code = totp(START)
  t.equal((await verify(ID, code)).ok, true)
  advance((step + 2) * 30_000 - 1 - now())
  t.same(await verify(ID, code), { ok: false, reason: 'replayed', status: 401 })
  advance(1)
  t.same(await verify(ID, code), { ok: false, reason: 'wrong_code', status: 401 })
})

t.test('totp reuse: a code is accepted again and skips the replay cache', async (t) => {
  const { verify, cache } = setup({ totp: 'reuse' })
  t.same(await verify(ID, totp(START)), { ok: true, kind: 'totp' })
  t.same(await verify(ID, totp(START)), { ok: true, kind: 'totp' })
  t.same(await verify(ID, totp(START - 30_000, 7)), { ok: true, kind: 'totp' })
  t.same(await verify(ID, totp(START - 60_000)), { ok: false, reason: 'wrong_code', status: 401 })
  t.equal(cache.calls.length, 0)
  t.same(await verify(ID, v1(S)), { ok: true, kind: 'v1' }, 'v1 keeps its replay protection')
  t.equal(cache.calls.length, 1)
})

t.test('totp off: codes are refused, v1 still works', async (t) => {
  const { verify, cache } = setup({ totp: 'off' })
  t.same(await verify(ID, totp(START)), { ok: false, reason: 'totp_off', status: 401 })
  t.equal(cache.calls.length, 0)
  t.same(await verify(ID, v1(S)), { ok: true, kind: 'v1' })
})

t.test('bad options are refused', async (t) => {
  const cache = new MemoryReplayCache()
  t.throws(() => createDefaultVerifier({ lookupSecret: () => undefined, replayCache: cache, totp: 'strict', skewSeconds: -1 }), RangeError)
  t.throws(() => createDefaultVerifier({ lookupSecret: () => undefined, replayCache: cache, totp: 'lax' as 'off', skewSeconds: 1 }), RangeError)
})

t.test('normaliseVerdict', async (t) => {
  t.same(normaliseVerdict(true), { ok: true, kind: 'custom' })
  t.same(normaliseVerdict(false), { ok: false, reason: 'rejected', status: 401 })
  t.same(normaliseVerdict({ ok: true, kind: 'ldap' }), { ok: true, kind: 'ldap' })
  t.same(normaliseVerdict({ ok: false, reason: 'expired' }), { ok: false, reason: 'expired', status: 401 })
  t.same(normaliseVerdict({ ok: false, reason: 'busy', status: 503 }), { ok: false, reason: 'busy', status: 503 })
  // What a JavaScript verifier might return by mistake must not let anyone in.
  for (const junk of [undefined, null, 1, 'yes', {}, { ok: 'true' }, { ok: 1 }]) {
    t.same(normaliseVerdict(junk as unknown as boolean), { ok: false, reason: 'rejected', status: 401 }, JSON.stringify(junk))
  }
  t.same(normaliseVerdict({ ok: false, reason: 'x', status: 200 as 401 }), { ok: false, reason: 'x', status: 401 })
})

t.test('hasRoom: asked once a token is proved good, before it is spent; no room leaves it unspent', async (t) => {
  const { verify, cache } = setup()
  let asked = 0
  const noRoom = { hasRoom: () => { asked++; return false } }
  const token = v1(S)
  t.same(await verify(ID, token, noRoom), { ok: false, reason: 'no_room', status: 503 })
  t.same(await verify(ID, totp(START), noRoom), { ok: false, reason: 'no_room', status: 503 })
  t.equal(cache.calls.length, 0, 'nothing remembered')
  t.equal(asked, 2)
  t.same(await verify(ID, token, { hasRoom: () => true }), { ok: true, kind: 'v1' }, 'the same token, once there is room')
  t.same(await verify(ID, totp(START), { hasRoom: () => true }), { ok: true, kind: 'totp' })
  t.same(await verify(ID, token, { hasRoom: () => true }), { ok: false, reason: 'replayed', status: 401 })

  asked = 0
  t.same(await verify(ID, v1(S, { key: Buffer.alloc(20, 1) }), noRoom), { ok: false, reason: 'bad_mac', status: 401 })
  t.same(await verify(ID, v1(S - 121), noRoom), { ok: false, reason: 'stale', status: 401 })
  t.same(await verify('nobody', v1(S, { id: 'nobody' }), noRoom), { ok: false, reason: 'unknown_id', status: 401 })
  t.notOk([-30_000, 0, 30_000].some(d => totp(START + d) === '000000'), 'a code of no step in the window')
  t.same(await verify(ID, '000000', noRoom), { ok: false, reason: 'wrong_code', status: 401 })
  t.equal(asked, 0, 'a bad token is refused as such, whatever the room')
})

t.test('recheck: whether the ID and the very secret a token was checked against are still accepted', async (t) => {
  const old = 'KRUGS4ZANFZSAYJAORSXG5BAONSWG4TF'
  const record: { secret?: string, previous: string[] } = { secret: SECRET_B32, previous: [old] }
  const verify = createDefaultVerifier({
    lookupSecret: id => id === ID ? record.secret : undefined,
    lookupPreviousSecrets: id => id === ID ? record.previous : [],
    replayCache: new MemoryReplayCache({ now: () => START }),
    totp: 'reuse',
    skewSeconds: 120,
    now: () => START
  })
  const oldKey = Buffer.from('This is a test secre') // `old`, base32-decoded
  const recheckOf = async (token: string): Promise<Recheck> => {
    const verdict = await verify(ID, token)
    if (!verdict.ok || verdict.recheck === undefined) throw new Error(`not accepted with a recheck: ${JSON.stringify(verdict)}`)
    return verdict.recheck
  }
  const current = [await recheckOf(v1(S)), await recheckOf(totp(START))]
  const previous = [await recheckOf(v1(S, { key: oldKey })), await recheckOf(totp(START, 6, oldKey))]
  const all = [...current, ...previous]
  t.same(all.map(r => r()), [undefined, undefined, undefined, undefined], 'all hold as long as nothing changed')

  record.previous = []
  t.same(current.map(r => r()), [undefined, undefined], 'the current secret holds when an old one goes')
  t.same(previous.map(r => r()), ['revoked', 'revoked'], 'tokens of the old one do not')

  record.previous = [SECRET_B32]
  record.secret = old
  t.same(all.map(r => r()), [undefined, undefined, undefined, undefined], 'a rotation back to the old secret, keeping the current one for an overlap')

  record.previous = []
  t.same(current.map(r => r()), ['revoked', 'revoked'], 'the secret replaced without overlap is revoked')

  record.secret = undefined
  t.same(all.map(r => r()), ['unknown_id', 'unknown_id', 'unknown_id', 'unknown_id'], 'the ID removed')
})
