import t from 'tap'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { MemoryReplayCache } from '../../lib/stores/memory-replay-cache'

function clock (start = 1_000_000): { now: () => number, advance: (ms: number) => void } {
  let time = start
  return { now: () => time, advance: (ms) => { time += ms } }
}

t.test('a key is fresh once, then replayed for exactly its ttl', async (t) => {
  const c = clock()
  const cache = new MemoryReplayCache({ now: c.now })
  t.equal(await cache.remember('a', 1000), 'fresh')
  t.equal(await cache.remember('a', 1000), 'replayed')
  t.equal(await cache.remember('b', 1000), 'fresh')
  c.advance(999)
  t.equal(await cache.remember('a', 1000), 'replayed', 'still inside its ttl')
  c.advance(1)
  t.equal(await cache.remember('a', 1000), 'fresh', 'forgotten once the ttl is over')
})

t.test('a replay does not extend or shorten the original ttl', async (t) => {
  const c = clock()
  const cache = new MemoryReplayCache({ now: c.now })
  await cache.remember('a', 1000)
  c.advance(500)
  t.equal(await cache.remember('a', 10_000), 'replayed')
  c.advance(500)
  t.equal(await cache.remember('a', 10), 'fresh')
})

t.test('when full it answers full rather than forgetting a live key', async (t) => {
  const c = clock()
  const cache = new MemoryReplayCache({ maxEntries: 3, now: c.now })
  for (const k of ['a', 'b', 'c']) t.equal(await cache.remember(k, 1000), 'fresh')
  t.equal(await cache.remember('d', 1000), 'full')
  for (const k of ['a', 'b', 'c']) t.equal(await cache.remember(k, 1000), 'replayed', `${k} kept`)
  t.equal(cache.size, 3)
})

t.test('when full it first drops expired entries, whatever their insertion order', async (t) => {
  const c = clock()
  const cache = new MemoryReplayCache({ maxEntries: 3, now: c.now })
  await cache.remember('long', 10_000)
  await cache.remember('mid', 5000)
  await cache.remember('short', 100)
  t.equal(await cache.remember('x', 1000), 'full')
  c.advance(100)
  t.equal(await cache.remember('x', 1000), 'fresh', 'the youngest insertion expired first')
  t.equal(await cache.remember('y', 1000), 'full')
  t.equal(await cache.remember('long', 1), 'replayed')
  t.equal(await cache.remember('mid', 1), 'replayed')
  c.advance(4900)
  t.equal(await cache.remember('y', 1000), 'fresh', 'mid and x are gone')
  t.equal(await cache.remember('long', 1), 'replayed')
})

t.test('matches a naive model under random keys, ttls and times', async (t) => {
  const c = clock()
  const max = 50
  const cache = new MemoryReplayCache({ maxEntries: max, now: c.now })
  const model = new Map<string, number>()
  let mismatches = 0
  let fulls = 0
  for (let i = 0; i < 20_000; i++) {
    c.advance(Math.floor(Math.random() * 20))
    const key = `k${Math.floor(Math.random() * 200)}`
    const ttl = 1 + Math.floor(Math.random() * 2000)
    const now = c.now()
    for (const [k, at] of model) if (at <= now) model.delete(k)
    let expected: string
    if (model.has(key)) expected = 'replayed'
    else if (model.size >= max) expected = 'full'
    else {
      expected = 'fresh'
      model.set(key, now + ttl)
    }
    if (expected === 'full') fulls++
    if (await cache.remember(key, ttl) !== expected) mismatches++
  }
  t.equal(mismatches, 0)
  t.ok(fulls > 0, 'the run did reach the cap')
})

t.test('ttl 0 is never remembered; bad ttls are refused', async (t) => {
  const cache = new MemoryReplayCache({ maxEntries: 1 })
  t.equal(await cache.remember('a', 0), 'fresh')
  t.equal(await cache.remember('a', 0), 'fresh')
  t.equal(cache.size, 0)
  await t.rejects(cache.remember('a', -1), RangeError)
  await t.rejects(cache.remember('a', Number.NaN), RangeError)
})

t.test('defaults: 500000 entries on the wall clock', async (t) => {
  const cache = new MemoryReplayCache()
  for (let i = 0; i < 500_000; i++) await cache.remember(String(i), 60_000)
  t.equal(await cache.remember('one more', 60_000), 'full')
  t.equal(await cache.remember('0', 60_000), 'replayed')
})

t.test('maxEntries must be a positive integer', async (t) => {
  t.throws(() => new MemoryReplayCache({ maxEntries: 0 }), RangeError)
  t.throws(() => new MemoryReplayCache({ maxEntries: 1.5 }), RangeError)
})

t.test('close empties the cache', async (t) => {
  const cache = new MemoryReplayCache()
  await cache.remember('a', 1000)
  await cache.close()
  t.equal(cache.size, 0)
  t.equal(await cache.remember('a', 1000), 'fresh')
})

t.test('a remembered key keeps nothing of the string it was cut from', async (t) => {
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  const cache = new MemoryReplayCache()
  const settle = (): number => { gc(); gc(); return process.memoryUsage().heapUsed }
  const before = settle()
  // As the verifier builds its keys: from slices of a request's URL, here of 64 KiB ones.
  for (let i = 0; i < 200; i++) {
    const url = `uuid:${'i'.repeat(36)}?response=v1.1.${String(i).padStart(22, 'n')}.${'m'.repeat(43)}&${'x'.repeat(65_536)}`
    const nonce = url.split('.')[2]!
    t.equal(await cache.remember(`v1:${url.slice(5, 41)}:${nonce}`, 60_000), 'fresh')
  }
  const grown = settle() - before
  // 200 URLs of 64 KiB would be 13 MB; 200 keys of 62 characters are a few KiB.
  t.ok(grown < 1_000_000, `the cache grew by ${grown} bytes`)
  t.equal(await cache.remember(`v1:${'i'.repeat(36)}:${'5'.padStart(22, 'n')}`, 60_000), 'replayed', 'the copies still match')
})
