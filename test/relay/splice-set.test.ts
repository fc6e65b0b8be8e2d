import t from 'tap'
import { SpliceSet, type SplicedPair } from '../../lib/relay/splice-set'

/* The per-ID counts follow the set's own membership, whatever adds or deletes a pair, and however often. */

const pair = (id: string): SplicedPair => ({ id }) as unknown as SplicedPair

t.test('each ID is counted as its pairs come and go, and forgotten at 0', async t => {
  const set = new SpliceSet()
  const [a1, a2, b1] = [pair('a'), pair('a'), pair('b')]
  set.add(a1).add(a2).add(b1)
  set.add(a1)
  t.same([set.of('a'), set.of('b'), set.size], [2, 1, 3], 'a pair added twice counts once')
  t.equal(set.delete(a1), true)
  t.equal(set.delete(a1), false, 'a pair deleted twice')
  t.equal(set.delete(pair('a')), false, 'a pair never added')
  t.same([set.of('a'), set.of('b')], [1, 1])
  set.delete(a2)
  t.equal(set.of('a'), 0)
  set.clear()
  t.same([set.of('b'), set.size], [0, 0])
  set.add(a1)
  t.equal(set.of('a'), 1, 'counts start again after a clear')
})
