import t from 'tap'
import { AuthThrottle, normaliseAddress } from '../../lib/relay/auth-throttle'
import { MemoryThrottleStore } from '../../lib/stores/memory-throttle-store'
import type { ResolvedAuthFailureLimits } from '../../lib/relay/auth-throttle'

const DEFAULTS: ResolvedAuthFailureLimits = { perPair: 10, perAddress: 100, perIdTotp: 30, window: 60_000, coolOff: 60_000 }

function setup (limits: Partial<ResolvedAuthFailureLimits> = {}): { throttle: AuthThrottle, store: MemoryThrottleStore, advance: (ms: number) => void } {
  let time = 1_700_000_000_000
  const store = new MemoryThrottleStore({ now: () => time })
  return { throttle: new AuthThrottle(store, { ...DEFAULTS, ...limits }), store, advance: (ms) => { time += ms } }
}

async function failTimes (throttle: AuthThrottle, n: number, address: string, id: (i: number) => string): Promise<number[]> {
  const out: number[] = []
  for (let i = 0; i < n; i++) out.push(await throttle.fail(address, id(i)))
  return out
}

t.test('a pair trips at exactly the 10th failure, and only that pair', async (t) => {
  const { throttle } = setup()
  const results = await failTimes(throttle, 9, '10.0.0.1', () => 'victim')
  t.same(results, Array(9).fill(0))
  t.equal(await throttle.check('10.0.0.1', 'victim'), 0, '9 failures still allowed')
  t.equal(await throttle.fail('10.0.0.1', 'victim'), 60, 'the 10th trips')
  t.equal(await throttle.check('10.0.0.1', 'victim'), 60)
  t.equal(await throttle.check('10.0.0.1', 'other'), 0, 'other IDs from that address')
  t.equal(await throttle.check('10.0.0.2', 'victim'), 0, 'that ID from other addresses')
})

t.test('the pair counter ignores the case of the ID', async (t) => {
  const { throttle } = setup()
  await failTimes(throttle, 10, '10.0.0.1', (i) => (i % 2 === 0 ? 'Victim' : 'VICTIM'))
  t.equal(await throttle.check('10.0.0.1', 'victim'), 60)
})

t.test('an address trips at exactly the 100th failure across IDs', async (t) => {
  const { throttle } = setup()
  const results = await failTimes(throttle, 99, '10.0.0.1', (i) => `id-${i}`)
  t.same(results, Array(99).fill(0), 'no pair reaches its limit')
  t.equal(await throttle.check('10.0.0.1', 'fresh-id'), 0)
  t.equal(await throttle.fail('10.0.0.1', 'id-99'), 60, 'the 100th trips')
  t.equal(await throttle.check('10.0.0.1', 'fresh-id'), 60, 'every ID is now refused to that address')
  t.equal(await throttle.check('10.0.0.2', 'fresh-id'), 0, 'other addresses are not')
})

t.test('recovers after the cool-off', async (t) => {
  const { throttle, advance } = setup()
  await failTimes(throttle, 10, '10.0.0.1', () => 'victim')
  advance(59_000)
  t.equal(await throttle.check('10.0.0.1', 'victim'), 1)
  advance(999)
  t.equal(await throttle.check('10.0.0.1', 'victim'), 1, 'a last ms still rounds up to 1 s')
  advance(1)
  t.equal(await throttle.check('10.0.0.1', 'victim'), 0)
  t.equal(await throttle.fail('10.0.0.1', 'victim'), 0, 'the old failures have left the window')
  t.same(await failTimes(throttle, 8, '10.0.0.1', () => 'victim'), Array(8).fill(0))
  t.equal(await throttle.fail('10.0.0.1', 'victim'), 60, 'a fresh 10 failures trip again')
})

t.test('the window slides', async (t) => {
  const { throttle, advance } = setup()
  await failTimes(throttle, 9, '10.0.0.1', () => 'a')
  advance(59_999)
  t.equal(await throttle.fail('10.0.0.1', 'a'), 60, '10 failures within 59.999 s')

  const second = setup()
  await failTimes(second.throttle, 9, '10.0.0.1', () => 'a')
  second.advance(60_000)
  t.equal(await second.throttle.fail('10.0.0.1', 'a'), 0, 'the first 9 are a full window old')
})

t.test('IPv4-mapped IPv6 addresses count as IPv4', async (t) => {
  t.equal(normaliseAddress('::ffff:1.2.3.4'), '1.2.3.4')
  t.equal(normaliseAddress('::FFFF:1.2.3.4'), '1.2.3.4')
  t.equal(normaliseAddress('1.2.3.4'), '1.2.3.4')
  t.equal(normaliseAddress('2001:DB8::1'), '2001:db8::1')
  t.equal(normaliseAddress('::ffff:102:304'), '::ffff:102:304', 'only the dotted form is unwrapped')

  const { throttle } = setup()
  await failTimes(throttle, 10, '1.2.3.4', (i) => (i % 2 === 0 ? 'x' : 'X'))
  t.equal(await throttle.check('::ffff:1.2.3.4', 'x'), 60)
  const other = setup({ perPair: 0, perAddress: 4 })
  await failTimes(other.throttle, 4, '', (i) => `id${i}`)
  await failTimes(other.throttle, 2, '::ffff:5.6.7.8', (i) => `id${i}`)
  t.equal(await other.throttle.fail('5.6.7.8', 'z'), 0)
  t.equal(await other.throttle.fail('::ffff:5.6.7.8', 'z'), 60, 'both spellings share one address counter')
})

t.test('a limit of 0 disables that counter', async (t) => {
  const noPair = setup({ perPair: 0 })
  t.same(await failTimes(noPair.throttle, 99, '10.0.0.1', () => 'a'), Array(99).fill(0))
  t.equal(await noPair.throttle.fail('10.0.0.1', 'a'), 60, 'the address counter still works')

  const noAddress = setup({ perAddress: 0 })
  t.same(await failTimes(noAddress.throttle, 450, '10.0.0.1', (i) => `id-${i % 50}`), Array(450).fill(0), '9 on each of 50 IDs')
  t.equal(await noAddress.throttle.fail('10.0.0.1', 'x'.repeat(9)), 0)

  const none = setup({ perPair: 0, perAddress: 0 })
  t.same(await failTimes(none.throttle, 200, '10.0.0.1', () => 'a'), Array(200).fill(0))
  t.equal(await none.throttle.check('10.0.0.1', 'a'), 0)
  t.equal(none.store.size, 0, 'nothing is even counted')
})

t.test('Retry-After is whole seconds, at least 1', async (t) => {
  const { throttle, advance } = setup({ perPair: 1, coolOff: 1500 })
  t.equal(await throttle.fail('10.0.0.1', 'a'), 2)
  advance(1400)
  t.equal(await throttle.check('10.0.0.1', 'a'), 1)
  const zero = setup({ perPair: 1, coolOff: 0 })
  t.equal(await zero.throttle.fail('10.0.0.1', 'a'), 0, 'no cool-off, nothing to wait for')
  t.equal(await zero.throttle.check('10.0.0.1', 'a'), 0)
})

t.test('the limits object is copied', async (t) => {
  const limits = { ...DEFAULTS }
  const throttle = new AuthThrottle(new MemoryThrottleStore(), limits)
  limits.perPair = 1
  t.equal(await throttle.fail('10.0.0.1', 'a'), 0)
})

t.test('MemoryThrottleStore', async (t) => {
  t.test('keys whose window or cool-off has passed are dropped as later calls go by, not kept until maxKeys forces them out', async (t) => {
    let time = 0
    const store = new MemoryThrottleStore({ now: () => time })
    for (let i = 0; i < 1000; i++) {
      await store.hit(`gone-${i}`, 60_000)
      await store.block(`gone-${i}`, 60_000)
    }
    t.equal(store.size, 1000)
    t.equal(store.blocked, 1000)
    time = 120_000
    for (let i = 0; i < 400; i++) await store.hit(`new-${i}`, 60_000)
    t.equal(store.size, 400, 'the 1,000 expired keys are gone after 250 calls of 4 sweeps each')
    t.equal(store.blocked, 0, 'and so are their ended cool-offs')
    t.equal(await store.hit('new-0', 60_000), 2, 'live keys keep their counts')
    time = 150_000
    t.equal(await store.hit('new-1', 60_000), 2, 'a key within its window is not swept')
  })

  t.test('counts hits inside the window only', async (t) => {
    let time = 0
    const store = new MemoryThrottleStore({ now: () => time })
    t.equal(await store.hit('k', 1000), 1)
    time = 500
    t.equal(await store.hit('k', 1000), 2)
    time = 1000
    t.equal(await store.hit('k', 1000), 2, 'the first hit is exactly 1000 ms old')
    time = 5000
    t.equal(await store.hit('k', 1000), 1)
    t.equal(await store.hit('other', 1000), 1)
  })

  t.test('blocks for the given time; a shorter block never cuts a longer one', async (t) => {
    let time = 0
    const store = new MemoryThrottleStore({ now: () => time })
    t.equal(await store.blockedFor('k'), 0)
    await store.block('k', 1000)
    t.equal(await store.blockedFor('k'), 1000)
    await store.block('k', 10)
    t.equal(await store.blockedFor('k'), 1000)
    time = 999
    t.equal(await store.blockedFor('k'), 1)
    time = 1000
    t.equal(await store.blockedFor('k'), 0)
    await store.block('k', 0)
    t.equal(await store.blockedFor('k'), 0)
  })

  t.test('tracks a bounded number of keys, forgetting the least recently hit', async (t) => {
    const store = new MemoryThrottleStore({ maxKeys: 3, now: () => 0 })
    for (const k of ['a', 'b', 'c']) await store.hit(k, 1000)
    await store.hit('a', 1000)
    await store.hit('d', 1000)
    t.equal(store.size, 3)
    t.equal(await store.hit('a', 1000), 3, 'a was kept')
    t.equal(await store.hit('b', 1000), 1, 'b was forgotten')
  })

  t.test('bounds the timestamps held overall', async (t) => {
    const store = new MemoryThrottleStore({ maxHits: 5, now: () => 0 })
    for (let i = 0; i < 3; i++) await store.hit('a', 1000)
    for (let i = 0; i < 3; i++) await store.hit('b', 1000)
    t.equal(store.size, 1, 'a made room for b')
    for (let i = 0; i < 10; i++) await store.hit('b', 1000)
    t.equal(await store.hit('b', 1000), 5, 'a single key saturates at the budget')
  })

  t.test('bounds cool-offs, dropping expired ones first', async (t) => {
    let time = 0
    const store = new MemoryThrottleStore({ maxKeys: 2, now: () => time })
    await store.block('a', 100)
    await store.block('b', 1000)
    time = 200
    await store.block('c', 1000)
    t.equal(await store.blockedFor('b'), 800)
    await store.block('d', 1000)
    t.equal(await store.blockedFor('b'), 0, 'the oldest live block goes when over the cap')
    t.equal(await store.blockedFor('c'), 1000)
    t.equal(await store.blockedFor('d'), 1000)
  })

  t.test('keeps exact counts over a long run', async (t) => {
    let time = 0
    const store = new MemoryThrottleStore({ now: () => time })
    const times: number[] = []
    for (let i = 0; i < 5000; i++) {
      time += Math.floor(Math.random() * 30)
      times.push(time)
      const expected = times.filter((x) => x > time - 1000).length
      const got = await store.hit('k', 1000)
      if (got !== expected) {
        t.equal(got, expected, `hit ${i}`)
        return
      }
    }
    t.pass('all counts exact')
  })

  t.test('rejects bad arguments', async (t) => {
    t.throws(() => new MemoryThrottleStore({ maxKeys: 0 }), RangeError)
    t.throws(() => new MemoryThrottleStore({ maxHits: -1 }), RangeError)
    await t.rejects(new MemoryThrottleStore().hit('k', -1), RangeError)
  })

  t.test('close forgets everything', async (t) => {
    const store = new MemoryThrottleStore()
    await store.hit('k', 1000)
    await store.block('k', 1000)
    await store.close()
    t.equal(store.size, 0)
    t.equal(await store.blockedFor('k'), 0)
    t.equal(await store.hit('k', 1000), 1)
  })
})

t.test('failed TOTP codes for one ID from many addresses trip that ID for TOTP codes only', async (t) => {
  const { throttle } = setup()
  for (let i = 1; i <= 29; i++) t.equal(await throttle.fail(`10.0.1.${i}`, 'victim', true), 0, `guess ${i}: one per address, no pair or address trips`)
  t.equal(await throttle.fail('10.0.1.30', 'Victim', true), 60, 'the 30th guess trips the ID, whatever the case of the ID')
  t.equal(await throttle.check('10.9.9.9', 'victim', true), 60, 'a TOTP code for that ID from a fresh address is cooled off')
  t.equal(await throttle.check('10.9.9.9', 'victim', false), 0, 'a v1 token for that ID is not')
  t.equal(await throttle.check('10.9.9.9', 'other', true), 0, 'nor a TOTP code for another ID')
})

t.test('failed v1 tokens never count against the ID', async (t) => {
  const { throttle } = setup()
  for (let i = 1; i <= 40; i++) t.equal(await throttle.fail(`10.0.2.${i}`, 'victim', false), 0)
  t.equal(await throttle.check('10.9.9.9', 'victim', true), 0)
})

t.test('an address that had a TOTP code accepted for an ID is exempt from its per-ID counter for a day, not from its own counters', async (t) => {
  const { throttle, advance } = setup()
  await throttle.accepted('10.0.3.1', 'victim')
  for (let i = 1; i <= 30; i++) await throttle.fail(`10.0.4.${i}`, 'victim', true)
  t.equal(await throttle.check('10.9.9.9', 'victim', true), 60, 'a fresh address is cooled off')
  t.equal(await throttle.check('10.0.3.1', 'Victim', true), 0, 'the known one is not')
  for (let i = 0; i < 10; i++) await throttle.fail('10.0.3.1', 'victim', true)
  t.equal(await throttle.check('10.0.3.1', 'victim', true), 60, 'its own pair counter still holds')
  advance(60_000)
  for (let i = 1; i <= 30; i++) await throttle.fail(`10.0.5.${i}`, 'victim', true)
  advance(24 * 3600_000 - 60_000)
  for (let i = 1; i <= 30; i++) await throttle.fail(`10.0.6.${i}`, 'victim', true)
  t.equal(await throttle.check('10.0.3.1', 'victim', true), 60, 'a day later it is a sender like any other')
})
