import t from 'tap'
import { MemoryThrottleStore } from '../../lib/stores/memory-throttle-store'

t.test('refund takes back the latest hit; the hits that stay keep their times', async t => {
  let time = 0
  const store = new MemoryThrottleStore({ now: () => time })
  for (const at of [0, 100, 200]) {
    time = at
    await store.hit('k', 1000)
  }
  await store.refund('k')
  time = 300
  t.equal(await store.hit('k', 1000), 3, 'two left, and this one')
  await store.refund('k')
  time = 1050
  t.equal(await store.hit('k', 1000), 2, 'the hit at 0 has left the window; the one at 100 has not')
})

t.test('refund never creates a key and never goes below zero', async t => {
  const store = new MemoryThrottleStore({ now: () => 0 })
  await store.refund('never-hit')
  t.equal(store.size, 0, 'no key made for a refund alone')
  await store.hit('once', 1000)
  await store.refund('once')
  t.equal(store.size, 0, 'a key taken back to nothing goes')
  await store.refund('once')
  await store.refund('once')
  t.equal(await store.hit('once', 1000), 1, 'refunds past zero took nothing from the next hit')
})

t.test('refunded hits leave the bound on hits held overall', async t => {
  const store = new MemoryThrottleStore({ maxHits: 4, now: () => 0 })
  for (let i = 0; i < 4; i++) await store.hit('a', 1000)
  for (let i = 0; i < 4; i++) await store.refund('a')
  for (let i = 0; i < 3; i++) await store.hit('b', 1000)
  t.equal(await store.hit('c', 1000), 1)
  t.equal(store.size, 2, 'b and c fill the bound, and nothing of a is left counted against it')
  t.equal(await store.refund('b'), undefined)
  t.equal(await store.hit('b', 1000), 3, 'b kept its hits')
})
