import t from 'tap'
import { parseServeArgs } from '../lib/cli/serve-args'
import { resolveOptions, type RendezvousOptions } from '../lib/options'

/* replayCachePerId and maxSplicedPerId: each ID's share of the replay cache and of maxSpliced. */

const BAD = { code: 'FST_RENDEZVOUS_BAD_OPTION' }

t.test('by default a quarter of the pool, at least 1 while the pool is capped', async t => {
  const o = resolveOptions({})
  t.same([o.replayCachePerId, o.maxSplicedPerId], [125_000, 2_500])
  t.same(pick({ replayCacheSize: 10, maxSpliced: 7 }), [2, 1])
  t.same(pick({ replayCacheSize: 3, maxSpliced: 1 }), [1, 1], 'a pool under 4 still has a share')
  t.same(pick({ maxSpliced: 0 }).at(1), 0, 'no cap, no share')
})

t.test('a given share is kept; 0 turns it off', async t => {
  t.same(pick({ replayCacheSize: 100, replayCachePerId: 7, maxSpliced: 50, maxSplicedPerId: 50 }), [7, 50])
  t.same(pick({ replayCachePerId: 0, maxSplicedPerId: 0 }), [0, 0])
  t.same(pick({ maxSpliced: 0, maxSplicedPerId: 0 }).at(1), 0)
})

t.test('a share that is no whole number, or could never bind, is refused by name', async t => {
  for (const [options, message] of [
    [{ replayCachePerId: -1 }, 'replayCachePerId must be a non-negative number, got -1'],
    [{ replayCachePerId: 2.5 }, 'replayCachePerId must be a whole number, got 2.5'],
    [{ maxSplicedPerId: '3' }, 'maxSplicedPerId must be a non-negative number, got the string "3"'],
    [{ replayCacheSize: 10, replayCachePerId: 11 }, 'replayCachePerId must be at most replayCacheSize (10), got 11'],
    [{ maxSpliced: 4, maxSplicedPerId: 5 }, 'maxSplicedPerId must be at most maxSpliced (4), got 5'],
    [{ maxSpliced: 0, maxSplicedPerId: 5 }, 'maxSplicedPerId must be 0 while maxSpliced is 0 (nothing to share), got 5']
  ] as const) {
    t.throws(() => resolveOptions(options as RendezvousOptions), { ...BAD, message: `Invalid rendezvous option: ${message}` }, message)
  }
})

t.test('serve: --replay-cache-per-id and --max-spliced-per-id, from flags and variables', async t => {
  t.same(plugin(parseServeArgs(['--replay-cache-per-id', '10', '--max-spliced-per-id', '0'])), { replayCachePerId: 10, maxSplicedPerId: 0 })
  t.same(plugin(parseServeArgs([], { RENDEZVOUS_REPLAY_CACHE_PER_ID: '3', RENDEZVOUS_MAX_SPLICED_PER_ID: '4' })), { replayCachePerId: 3, maxSplicedPerId: 4 })
  t.same(plugin(parseServeArgs([])), {}, 'unset, the plugin derives them from the pools')
  t.throws(() => parseServeArgs(['--replay-cache-size', '10'], { RENDEZVOUS_REPLAY_CACHE_PER_ID: '20' }), { message: '--replay-cache-per-id must be at most --replay-cache-size (10), got 20' })
  t.throws(() => parseServeArgs(['--max-spliced', '0', '--max-spliced-per-id', '2']), { message: '--max-spliced-per-id must be 0 while --max-spliced is 0 (nothing to share)' })
  t.same(plugin(parseServeArgs(['--max-spliced', '0', '--max-spliced-per-id', '0'])), { maxSplicedPerId: 0 })
  for (const flag of ['--replay-cache-per-id', '--max-spliced-per-id']) {
    t.throws(() => parseServeArgs([flag, '-1']), { message: new RegExp(`^${flag}`) }, `${flag} -1`)
  }
})

function pick (options: RendezvousOptions): [number, number] {
  const o = resolveOptions(options)
  return [o.replayCachePerId, o.maxSplicedPerId]
}

function plugin (args: ReturnType<typeof parseServeArgs>): object {
  const { replayCachePerId, maxSplicedPerId } = args.plugin
  return Object.fromEntries(Object.entries({ replayCachePerId, maxSplicedPerId }).filter(([, v]) => v !== undefined))
}
