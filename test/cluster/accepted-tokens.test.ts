import t from 'tap'
import { AcceptedTokens } from '../../lib/cluster/accepted-tokens'

t.test('a key is held until its window ends', async t => {
  const kept = new AcceptedTokens(10)
  kept.add('a', 2000, 1000)
  t.ok(kept.has('a', 1999))
  t.notOk(kept.has('a', 2000), 'not at its end')
  t.notOk(kept.has('b', 1000))
})

t.test('full when it holds its bound of live keys, never by forgetting one; expired keys make room', async t => {
  const kept = new AcceptedTokens(3)
  for (const key of ['a', 'b', 'c']) kept.add(key, 10_000, 0)
  t.ok(kept.full(0), 'three live keys: full')
  t.ok(kept.has('a', 0), 'the oldest is still held')
  t.notOk(kept.full(10_000), 'once they expire, there is room')
  t.equal(kept.size, 0, 'and they are gone')
})

t.test('expired keys go from the front as new ones come, and in sweeps', async t => {
  const kept = new AcceptedTokens(100)
  for (let i = 0; i < 20; i++) kept.add(`old-${i}`, 100, 0)
  kept.add('new-0', 10_000, 200)
  t.equal(kept.size, 20 - 8 + 1, 'an add drops up to eight expired ones')
  kept.sweep(200, 5)
  t.equal(kept.size, 13 - 5, 'a sweep as many as its budget')
  kept.sweep(200, 1000)
  t.equal(kept.size, 1, 'and stops at the first live key')
  t.ok(kept.has('new-0', 200))
})

t.test('batches give the live keys with the time they have left', async t => {
  const kept = new AcceptedTokens(10)
  kept.add('gone', 500, 0)
  for (const key of ['a', 'b', 'c']) kept.add(key, 1500, 0)
  t.same([...kept.batches(1000, 2)], [[['a', 500], ['b', 500]], [['c', 500]]])
})
