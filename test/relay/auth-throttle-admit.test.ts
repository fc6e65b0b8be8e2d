import t from 'tap'
import { AuthThrottle, type AdmitResult, type ResolvedAuthFailureLimits } from '../../lib/relay/auth-throttle'
import { MemoryThrottleStore } from '../../lib/stores/memory-throttle-store'
import type { ThrottleStore } from '../../lib/stores/throttle-store'

const DEFAULTS: ResolvedAuthFailureLimits = { perPair: 10, perAddress: 100, perIdTotp: 30, window: 60_000, coolOff: 60_000 }

/** A store whose every call takes a real turn of I/O, as Redis does; `calls` names each key it was asked to count. */
function slowStore (inner = new MemoryThrottleStore(), withRefund = true): ThrottleStore & { calls: string[] } {
  const later = async <T>(work: () => Promise<T>): Promise<T> => await new Promise<T>((resolve, reject) => { setTimeout(() => { work().then(resolve, reject) }, 1) })
  const calls: string[] = []
  const store: ThrottleStore & { calls: string[] } = {
    calls,
    hit: async (key, windowMs) => { calls.push(key); return await later(async () => await inner.hit(key, windowMs)) },
    block: async (key, ms) => { await later(async () => { await inner.block(key, ms) }) },
    blockedFor: async key => await later(async () => await inner.blockedFor(key))
  }
  if (withRefund) store.refund = async key => { await later(async () => { await inner.refund(key) }) }
  return store
}

function admitted (result: AdmitResult): boolean {
  return 'admission' in result
}

/** Sends `n` attempts at once; each judged one ends with `verdict`. Resolves with what each was answered. */
async function attemptsAtOnce (throttle: AuthThrottle, n: number, attempt: (i: number) => [string, string, boolean], verdict: 'wrong' | 'good'): Promise<Array<number | 'judged'>> {
  return await Promise.all(Array.from({ length: n }, async (_, i) => {
    const result = await throttle.admit(...attempt(i))
    if ('coolOff' in result) return result.coolOff
    if (!('admission' in result)) throw new Error('gone')
    if (verdict === 'wrong') await result.admission.failed()
    else await result.admission.release()
    return 'judged'
  }))
}

function judged (answers: Array<number | 'judged'>): number {
  return answers.filter(answer => answer === 'judged').length
}

t.test('wrong tokens at once, through a store with I/O: the limit are judged, the rest answered with the cool-off', async t => {
  const throttle = new AuthThrottle(slowStore(), DEFAULTS)
  const answers = await attemptsAtOnce(throttle, 100, () => ['10.0.0.1', 'victim', true], 'wrong')
  t.equal(judged(answers), 10, 'the per-pair limit')
  t.same(answers.filter(answer => answer !== 'judged'), Array(90).fill(60), 'each of the others gets 429 for the cool-off')
  t.equal(await throttle.check('10.0.0.1', 'victim', true), 60, 'and the pair is cooled off')

  const scan = new AuthThrottle(slowStore(), DEFAULTS)
  const spread = await attemptsAtOnce(scan, 300, i => ['10.0.0.2', `id-${i % 50}`, false], 'wrong')
  t.equal(judged(spread), 100, 'spread over 50 IDs: the per-address limit')

  const totp = new AuthThrottle(slowStore(), DEFAULTS)
  const many = await attemptsAtOnce(totp, 100, i => [`10.1.${i}.1`, 'victim', true], 'wrong')
  t.equal(judged(many), 30, 'TOTP codes from 100 addresses: the per-ID limit')
})

t.test('good tokens at once, more than a limit has room for, are all let through, and leave nothing counted', async t => {
  const inner = new MemoryThrottleStore()
  const throttle = new AuthThrottle(slowStore(inner), DEFAULTS)
  const started = Date.now()
  const answers = await attemptsAtOnce(throttle, 64, () => ['10.0.0.1', 'agent', false], 'good')
  t.equal(judged(answers), 64)
  t.ok(Date.now() - started < 1000, `let through a few at a time, promptly (${Date.now() - started} ms)`)
  t.equal(inner.size, 0, 'no count is left for good tokens')
  const nat = await attemptsAtOnce(throttle, 300, i => ['10.0.0.1', `agent-${i % 3}`, false], 'good')
  t.equal(judged(nat), 300, 'three times the address limit, from one address: all through')
})

t.test('among good tokens at once, only the failures stay counted', async t => {
  const throttle = new AuthThrottle(slowStore(), { ...DEFAULTS, perPair: 3 })
  const answers = await Promise.all(Array.from({ length: 30 }, async (_, i) => {
    const result = await throttle.admit('10.0.0.1', 'agent')
    if (!('admission' in result)) return result
    if (i % 15 === 0) await result.admission.failed()
    else await result.admission.release()
    return 'judged'
  }))
  t.equal(answers.filter(answer => answer === 'judged').length, 30, 'two failures and 28 good tokens, ten times the limit of 3: all judged')
  t.equal(await throttle.check('10.0.0.1', 'agent'), 0, 'not tripped')
  const third = await throttle.admit('10.0.0.1', 'agent')
  if ('admission' in third) t.same(await third.admission.failed(), { coolOff: 60, tripped: ['pair'] }, 'the third failure trips it')
  else t.fail('the third attempt was not let through')
})

t.test('the exemptions hold: v1 tokens are not held to the per-ID counter, nor a known TOTP sender', async t => {
  const throttle = new AuthThrottle(slowStore(), { ...DEFAULTS, perIdTotp: 1 })
  const guess = await throttle.admit('10.0.0.9', 'victim', true)
  t.ok(admitted(guess), 'a guess holds the per-ID counter')
  const v1 = await Promise.all(Array.from({ length: 5 }, async (_, i) => await throttle.admit(`10.0.0.${i + 1}`, 'victim', false)))
  t.ok(v1.every(admitted), 'v1 tokens for the ID from five addresses are let through meanwhile')
  await throttle.accepted('10.0.3.1', 'victim')
  t.ok(admitted(await throttle.admit('10.0.3.1', 'victim', true)), 'and a TOTP code from an address that had one accepted')
  const other = await throttle.admit('10.0.4.1', 'victim', true, () => false)
  t.same(other, { coolOff: 1 }, 'a TOTP code from another address waits for room, then is refused')
})

t.test('without refund in the store, attempts are held in the node\'s memory', async t => {
  const store = slowStore(new MemoryThrottleStore(), false)
  const throttle = new AuthThrottle(store, DEFAULTS)
  const wrong = await attemptsAtOnce(throttle, 100, () => ['10.0.0.1', 'victim', false], 'wrong')
  t.equal(judged(wrong), 10, 'the limit still holds')
  t.notOk(store.calls.some(key => key.includes(':held:')), 'the store is asked to count failures only')
  const good = await attemptsAtOnce(throttle, 64, () => ['10.0.0.1', 'agent', false], 'good')
  t.equal(judged(good), 64, 'and good tokens pass')
})

t.test('a counter full of attempts being judged: the attempt waits, then gets 429; a client gone ends the wait', async t => {
  const throttle = new AuthThrottle(new MemoryThrottleStore(), { ...DEFAULTS, perPair: 2, coolOff: 10_000 })
  // Two in flight, never ended: as if their tokens were still being judged.
  for (let i = 0; i < 2; i++) t.ok(admitted(await throttle.admit('10.0.0.1', 'victim')))
  t.equal(await throttle.check('10.0.0.1', 'victim'), 0, 'no cool-off is running')
  const started = Date.now()
  t.same(await throttle.admit('10.0.0.1', 'victim'), { coolOff: 1 }, 'no room: 429, come back in a second')
  t.ok(Date.now() - started >= 1900, 'after waiting for room for 2 s')
  let gone = false
  setTimeout(() => { gone = true }, 50)
  const before = Date.now()
  t.same(await throttle.admit('10.0.0.1', 'victim', false, () => gone), { gone: true })
  t.ok(Date.now() - before < 1000, 'the wait ends soon after the client is gone')
})

t.test('roomWait bounds the wait for room: 0 answers 429 at once, a short one waits that long', async t => {
  for (const [roomWait, least, most] of [[0, 0, 150], [400, 380, 1500]] as const) {
    const throttle = new AuthThrottle(new MemoryThrottleStore(), { ...DEFAULTS, perPair: 1, coolOff: 10_000, roomWait })
    t.ok(admitted(await throttle.admit('10.0.0.1', 'victim')), 'one in flight')
    const started = Date.now()
    t.same(await throttle.admit('10.0.0.1', 'victim'), { coolOff: 1 }, `roomWait ${roomWait}: 429`)
    const waited = Date.now() - started
    t.ok(waited >= least && waited < most, `roomWait ${roomWait}: answered after ${waited} ms`)
  }
})

t.test('without a cool-off nothing is held or refused', async t => {
  const store = slowStore()
  const throttle = new AuthThrottle(store, { ...DEFAULTS, perPair: 1, coolOff: 0 })
  const answers = await Promise.all(Array.from({ length: 20 }, async () => await throttle.admit('10.0.0.1', 'victim')))
  t.ok(answers.every(admitted), 'all through, none released')
  t.notOk(store.calls.some(key => key.includes(':held:')), 'nothing held')
})

t.test('an attempt ends once: a second release, or a release after a failure, takes nothing back', async t => {
  const inner = new MemoryThrottleStore()
  const throttle = new AuthThrottle(slowStore(inner), { ...DEFAULTS, perPair: 2 })
  const first = await throttle.admit('10.0.0.1', 'victim')
  const second = await throttle.admit('10.0.0.1', 'victim')
  if (!('admission' in first) || !('admission' in second)) throw new Error('not admitted')
  await first.admission.failed()
  await first.admission.release()
  await second.admission.release()
  await second.admission.release()
  t.same(await second.admission.failed(), { coolOff: 0, tripped: [] }, 'nothing counted after it ended')
  const third = await throttle.admit('10.0.0.1', 'victim')
  t.ok(admitted(third), 'one failure held of two: room for one')
  t.same(await throttle.admit('10.0.0.1', 'victim', false, () => true), { gone: true }, 'and not for two')
})

t.test('unknown-ID probes at once, through a store with I/O: the limit get a failure, the rest the cool-off', async t => {
  const probes = new AuthThrottle(slowStore(), { perPair: 0, perAddress: 100, perIdTotp: 0, window: 60_000, coolOff: 60_000 }, 'unknownid')
  const answers = await Promise.all(Array.from({ length: 150 }, async () => await probes.failFirst('10.0.0.1', '')))
  t.equal(answers.filter(answer => answer === 0).length, 100, 'the 100th is still a failure')
  t.same(answers.filter(answer => answer !== 0), Array(50).fill(60))
  t.equal(await probes.check('10.0.0.1', ''), 60)
  const none = new AuthThrottle(slowStore(), { perPair: 0, perAddress: 1, perIdTotp: 0, window: 60_000, coolOff: 0 }, 'unknownid')
  t.same(await Promise.all([1, 2, 3].map(async () => await none.failFirst('10.0.0.1', ''))), [0, 0, 0], 'without a cool-off, never refused')
})

t.test('a cool-off shorter than the window: once it ends, attempts are judged again, and a failure trips it anew', async t => {
  const throttle = new AuthThrottle(new MemoryThrottleStore(), { perPair: 3, perAddress: 0, perIdTotp: 0, window: 10_000, coolOff: 300 })
  for (let i = 0; i < 3; i++) {
    const r = await throttle.admit('192.0.2.7', 'hub-1')
    if (!('admission' in r)) throw new Error('refused before the limit')
    await r.admission.failed()
  }
  t.same(await throttle.admit('192.0.2.7', 'hub-1'), { coolOff: 1 }, 'in the cool-off')
  await new Promise(resolve => setTimeout(resolve, 400))
  const started = Date.now()
  const after = await throttle.admit('192.0.2.7', 'hub-1')
  t.ok('admission' in after, 'let through once the cool-off ended, though the window still counts three failures')
  t.ok(Date.now() - started < 500, 'at once, not after the wait for room')
  if ('admission' in after) t.same((await after.admission.failed()).tripped, ['pair'], 'one more failure trips it again')
  t.same(await throttle.admit('192.0.2.7', 'hub-1'), { coolOff: 1 })
})
