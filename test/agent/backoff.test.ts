import t from 'tap'
import { Backoff, parseRetryAfter } from '../../lib/agent/backoff'

t.test('ceilings double from the base up to the cap', async (t) => {
  const b = new Backoff({ base: 250, max: 3000, random: () => 0.9999 })
  const delays = Array.from({ length: 7 }, () => b.next())
  t.same(delays, [249, 499, 999, 1999, 2999, 2999, 2999])
  t.equal(b.attempts, 7)
  b.reset()
  t.equal(b.next(), 249, 'reset starts over')
})

t.test('full jitter: anywhere from zero to the ceiling', async (t) => {
  const low = new Backoff({ base: 250, max: 30_000, random: () => 0 })
  t.same([low.next(), low.next(), low.next()], [0, 0, 0])
  const real = new Backoff({ base: 100, max: 1000 })
  for (let i = 0; i < 200; i++) {
    const d = real.next()
    if (d < 0 || d > 1000) t.fail(`delay ${d} out of bounds`)
  }
  t.pass('200 real delays within [0, cap]')
})

t.test('a huge attempt count stays finite', async (t) => {
  const b = new Backoff({ base: 250, max: 5000, random: () => 0.5 })
  for (let i = 0; i < 2000; i++) b.next()
  t.equal(b.next(), 2500)
})

t.test('parseRetryAfter reads seconds and dates, ignores junk, clamps', async (t) => {
  const now = Date.parse('2030-01-01T00:00:00Z')
  t.equal(parseRetryAfter('5', now), 5000)
  t.equal(parseRetryAfter(' 0 ', now), 0)
  t.equal(parseRetryAfter('Tue, 01 Jan 2030 00:00:30 GMT', now), 30_000)
  t.equal(parseRetryAfter('Mon, 31 Dec 2029 00:00:00 GMT', now), 0, 'a date in the past means now')
  t.equal(parseRetryAfter('soon', now), undefined)
  t.equal(parseRetryAfter('-3', now), undefined)
  t.equal(parseRetryAfter(undefined, now), undefined)
  t.equal(parseRetryAfter('999999999', now), 3_600_000, 'at most an hour')
})
