import t from 'tap'
import { AcceptedTokens } from '../../lib/cluster/accepted-tokens'

t.test('a key is held until its window ends', async t => {
  const kept = new AcceptedTokens(10)
  kept.add('a', 2000, 1000)
  t.ok(kept.has('a', 1999))
  t.notOk(kept.has('a', 2000), 'not at its end')
  t.notOk(kept.has('b', 1000))
})

t.test('bounded: past the bound the oldest go first, and expired ones go as new ones come', async t => {
  const kept = new AcceptedTokens(3)
  for (const key of ['a', 'b', 'c', 'd']) kept.add(key, 10_000, 0)
  t.equal(kept.size, 3)
  t.notOk(kept.has('a', 0), 'the oldest went')
  t.ok(kept.has('d', 0))
  const expiring = new AcceptedTokens(100)
  for (let i = 0; i < 20; i++) expiring.add(`old-${i}`, 100, 0)
  expiring.add('new-0', 10_000, 200)
  t.equal(expiring.size, 20 - 8 + 1, 'an add drops up to eight expired ones')
  expiring.add('new-1', 10_000, 200)
  expiring.add('new-2', 10_000, 200)
  t.equal(expiring.size, 3, 'until a live one comes first')
})

t.test('batches give the live keys with the time they have left', async t => {
  const kept = new AcceptedTokens(10)
  kept.add('gone', 500, 0)
  for (const key of ['a', 'b', 'c']) kept.add(key, 1500, 0)
  t.same([...kept.batches(1000, 2)], [[['a', 500], ['b', 500]], [['c', 500]]])
})
