import t from 'tap'
import { createHmac, randomBytes } from 'node:crypto'
import { createDefaultVerifier, type Verifier } from '../../lib/tokens/verifier'
import { ReplayShare } from '../../lib/tokens/replay-share'
import { MemoryReplayCache } from '../../lib/stores/memory-replay-cache'
import type { ReplayCache, ReplayVerdict } from '../../lib/stores/replay-cache'
import { RFC_KEY as SECRET } from '../helpers/fixtures'

/*
 * Each ID's share of the replay cache: one ID with a valid secret that parks
 * and closes at speed must not fill the cache for every other ID.
 */

const A = 'hub-a'
const B = 'hub-b'
const SECRET_B32 = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ'
const START = 1_700_000_000_000
const S = START / 1000
const SHARE_FULL = { ok: false, reason: 'replay_share_full', status: 503 }

// Built from node:crypto alone, not with lib/tokens.
function v1 (id: string, seconds = S): string {
  const nonce = randomBytes(16).toString('base64url')
  const mac = createHmac('sha256', SECRET).update(`rendezvous-v1\n${id}\n${seconds}\n${nonce}`).digest('base64url')
  return `v1.${seconds}.${nonce}.${mac}`
}

interface Setup { verify: (id: string, token: string) => Promise<unknown>, cache: MemoryReplayCache, advance: (ms: number) => void }

function setup (maxEntries: number, replayCachePerId: number | undefined, wrap: (c: MemoryReplayCache) => ReplayCache = c => c): Setup {
  let time = START
  const now = (): number => time
  const cache = new MemoryReplayCache({ maxEntries, now })
  const verifier: Verifier = createDefaultVerifier({ lookupSecret: () => SECRET_B32, replayCache: wrap(cache), totp: 'strict', skewSeconds: 120, now, replayCachePerId })
  // The verdict without its recheck, so that it compares whole.
  const verify = async (id: string, token: string): Promise<unknown> => {
    const { recheck, ...verdict } = await verifier(id, token) as { recheck?: unknown }
    return verdict
  }
  return { verify, cache, advance: ms => { time += ms } }
}

async function acceptedOf (verify: Setup['verify'], id: string, n: number, seconds = S): Promise<number> {
  let accepted = 0
  for (let i = 0; i < n; i++) if ((await verify(id, v1(id, seconds)) as { ok: boolean }).ok) accepted++
  return accepted
}

t.test('an ID past its share is refused while less than a share of room would be left; another ID still gets in', async t => {
  const { verify, cache } = setup(8, 2)
  t.equal(await acceptedOf(verify, A, 6), 6, 'alone, A goes past its share of 2: the cache has room')
  t.same(await verify(A, v1(A)), SHARE_FULL, 'the 7th would leave 1 entry, less than a share')
  t.equal(cache.size, 6, 'the refused token was not remembered')
  t.same(await verify(B, v1(B)), { ok: true, kind: 'v1' }, 'B, under its share, takes the last share of room')
  t.same(await verify(B, v1(B)), { ok: true, kind: 'v1' })
  t.same(await verify(B, v1(B)), { ok: false, reason: 'replay_cache_full', status: 503 }, 'a cache full outright says so')
  t.same(await verify(A, v1(A)), { ok: false, reason: 'replay_cache_full', status: 503 })
})

t.test('a token refused for its share stays unspent: accepted once its ID\'s older tokens expire', async t => {
  const { verify, advance } = setup(8, 2)
  // Tokens from 120 s ago live 6 s more (their window, plus a 5 s margin); the refused one, from now, 126 s.
  t.equal(await acceptedOf(verify, A, 6, S - 120), 6)
  const token = v1(A)
  t.same(await verify(A, token), SHARE_FULL)
  advance(6_000)
  t.same(await verify(A, token), { ok: true, kind: 'v1' }, 'the same token, once the room came back')
  t.same(await verify(A, token), { ok: false, reason: 'replayed', status: 401 }, 'and then only once')
})

t.test('replayCachePerId 0 turns the share off: one ID may fill the cache', async t => {
  const { verify } = setup(8, 0)
  t.equal(await acceptedOf(verify, A, 8), 8)
  t.same(await verify(B, v1(B)), { ok: false, reason: 'replay_cache_full', status: 503 })
})

t.test('a cache without room() gets no share: it knows its own capacity', async t => {
  const { verify } = setup(8, 2, c => ({ remember: async (key, ttl) => await c.remember(key, ttl) }))
  t.equal(await acceptedOf(verify, A, 8), 8)
  t.same(await verify(A, v1(A)), { ok: false, reason: 'replay_cache_full', status: 503 })
})

t.test('replays and failures do not count against the share', async t => {
  const failing = { fail: false }
  const { verify } = setup(8, 2, c => ({
    room: () => c.room(),
    remember: async (key, ttl): Promise<ReplayVerdict> => { if (failing.fail) throw new Error('down'); return await c.remember(key, ttl) }
  }))
  const token = v1(A)
  t.same(await verify(A, token), { ok: true, kind: 'v1' })
  for (let i = 0; i < 10; i++) t.same(await verify(A, token), { ok: false, reason: 'replayed', status: 401 })
  failing.fail = true
  for (let i = 0; i < 10; i++) t.same(await verify(A, v1(A)), { ok: false, reason: 'replay_cache_error', status: 503 })
  failing.fail = false
  t.equal(await acceptedOf(verify, A, 5), 5, 'A holds 1: it may still go to 6')
  t.same(await verify(A, v1(A)), SHARE_FULL)
})

/** A cache that answers only when the test lets it, as Redis does a round trip later; its room leaves out what it is taking. */
class HeldCache implements ReplayCache {
  readonly held: Array<() => void> = []
  constructor (readonly inner: MemoryReplayCache) {}
  room (): number { return this.inner.room() - this.held.length }
  async remember (key: string, ttlMs: number): Promise<ReplayVerdict> {
    await new Promise<void>(resolve => this.held.push(resolve))
    return await this.inner.remember(key, ttlMs)
  }

  answer (): void {
    for (const go of this.held.splice(0)) go()
  }
}

t.test('CONNECTs of one ID judged at once do not overshoot: those being judged count', async t => {
  let held: HeldCache | undefined
  const { verify, cache } = setup(8, 2, c => (held = new HeldCache(c)))
  const verdicts = Array.from({ length: 20 }, async () => await verify(A, v1(A)))
  await new Promise(resolve => setImmediate(resolve))
  t.equal(held!.held.length, 6, 'six reach the cache; the others are refused before it')
  held!.answer()
  const all = await Promise.all(verdicts) as Array<{ ok: boolean, reason?: string }>
  t.equal(all.filter(v => v.ok).length, 6)
  t.equal(all.filter(v => v.reason === 'replay_share_full').length, 14)
  t.equal(cache.size, 6)
  const b = verify(B, v1(B))
  await new Promise(resolve => setImmediate(resolve))
  held!.answer()
  t.same(await b, { ok: true, kind: 'v1' }, 'B still gets in')
})

t.test('an ID whose tokens all expired is forgotten, and its count starts again', async t => {
  let room = 2
  const share = new ReplayShare({ share: 2, room: () => room })
  for (let i = 0; i < 2; i++) {
    const place = share.reserve(A, 0)
    if (place === 'share') throw new Error('refused')
    place.keep(1_000 + i)
  }
  t.equal(share.reserve(A, 0), 'share', 'holds its share, and one more would leave 1 of room')
  room = 3
  const released = share.reserve(A, 0)
  t.not(released, 'share', 'with 3 of room, one more leaves a share')
  if (released !== 'share') released.release()
  t.equal(share.held(A, 1_000), 1, 'the first token ended at 1000 ms: an entry lives while now < its expiry')
  t.equal(share.held(A, 1_001), 0)
  room = 1
  t.not(share.reserve(A, 1_001), 'share', 'under its share again')
})
