import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { FileReplayCache, type JournalLog } from '../../lib/stores/file-replay-cache'
import { until } from '../helpers/until'

// A journal removed while the server runs (rm of the file, or of the whole data dir) must not take the
// tokens accepted before a restart with it: the cache notices and writes a new journal from memory.

type Test = Parameters<Parameters<typeof t.test>[0]>[0]

function dataDir (t: Test): string {
  const root = mkdtempSync(join(tmpdir(), 'rv-journal-removed-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  return join(root, 'data')
}

function logger (): { log: JournalLog, logged: Array<[string, string, object]> } {
  const logged: Array<[string, string, object]> = []
  const log = {
    error: (fields: object, msg: string) => { logged.push(['error', msg, fields]) },
    warn: (fields: object, msg: string) => { logged.push(['warn', msg, fields]) },
    info: (fields: object, msg: string) => { logged.push(['info', msg, fields]) }
  }
  return { log, logged }
}

async function open (t: Test, dir: string, log?: JournalLog, now?: () => number): Promise<FileReplayCache> {
  const cache = await FileReplayCache.open({ dataDir: dir, log, now })
  t.teardown(() => cache.close())
  return cache
}

const RECREATED = 'the replay journal was removed while the server ran; it was recreated from memory with every token still inside its window'

// What a restart after a crash reads: the cache under test is not closed.
async function replayedAfterRestart (t: Test, dir: string, keys: string[], now?: () => number): Promise<void> {
  const next = await open(t, dir, undefined, now)
  t.equal(next.loaded.entries, keys.length, 'every key is read back')
  const accepted: string[] = []
  for (const key of keys) if (await next.remember(key, 60_000) !== 'replayed') accepted.push(key)
  t.same(accepted, [], 'every key is refused after the restart')
}

for (const removal of ['the journal', 'the data dir'] as const) {
  t.test(`keys accepted before and after ${removal} is removed are all replayed after a crash`, async t => {
    const dir = dataDir(t)
    const { log, logged } = logger()
    const cache = await open(t, dir, log)
    for (const key of ['before-1', 'before-2']) t.equal(await cache.remember(key, 60_000), 'fresh')
    if (removal === 'the journal') unlinkSync(cache.file)
    else rmSync(dir, { recursive: true })
    t.equal(await cache.remember('after-1', 60_000), 'fresh')
    // Answered only once the key is in the file under the name: a SIGKILL now must not lose it.
    t.match(readFileSync(cache.file, 'utf8'), /"before-1"\n[^]*"before-2"\n[^]*"after-1"\n/)
    t.equal(statSync(cache.file).mode & 0o777, 0o600, 'the new journal is private')
    t.equal(statSync(dir).mode & 0o777, 0o700, 'so is a data dir made again')
    const concurrent = ['after-2', 'after-3', 'after-4']
    t.same(await Promise.all(concurrent.map(async key => await cache.remember(key, 60_000))), ['fresh', 'fresh', 'fresh'])
    t.same(logged, [['warn', RECREATED, { file: cache.file }]], 'one warning naming the file')
    t.same(readdirSync(dir).filter(name => name.endsWith('.tmp')), [], 'no temporary file left')
    await replayedAfterRestart(t, dir, ['before-1', 'before-2', 'after-1', ...concurrent])
  })
}

t.test('keys appended while a compaction runs into the removal of the data dir are in the new journal', async t => {
  const dir = dataDir(t)
  let time = 1_800_000_000_000
  const now = (): number => time
  const { log, logged } = logger()
  const cache = await open(t, dir, log, now)
  // Enough live keys that the compaction's rewrite yields between chunks; then enough expired lines to start it.
  const live = Array.from({ length: 10_000 }, (_, i) => `live-${i}`)
  for (const key of live) await cache.remember(key, 10_000_000)
  for (let i = 0; i < 20_010; i++) {
    await cache.remember(`brief-${i}`, 1)
    time += 1
  }
  // The compaction has written its first chunk to a temporary file, which goes with the data dir.
  rmSync(dir, { recursive: true })
  const during = ['during-1', 'during-2', 'during-3']
  t.same(await Promise.all(during.map(async key => await cache.remember(key, 10_000_000))), ['fresh', 'fresh', 'fresh'])
  t.same(logged.map(([level, msg]) => [level, msg]), [['warn', RECREATED]], 'the failed compaction is not reported as one')
  await replayedAfterRestart(t, dir, [...live, ...during], now)
})

t.test('an idle server notices the removal within a second or at a readiness probe, and recreates the journal', async t => {
  const dir = dataDir(t)
  const { log, logged } = logger()
  const cache = await open(t, dir, log)
  await cache.remember('before', 60_000)
  rmSync(dir, { recursive: true })
  const took = await until(() => existsSync(cache.file), 3000, 'the journal recreated by the timer')
  t.ok(took < 2000, `recreated after ${took} ms`)
  unlinkSync(cache.file)
  t.equal(cache.writable(), true, 'a probe that finds it gone starts the recreation; tokens are still accepted')
  await until(() => existsSync(cache.file), 500, 'the journal recreated by the probe')
  t.same(logged.map(([level, msg]) => [level, msg]), [['warn', RECREATED], ['warn', RECREATED]])
  await replayedAfterRestart(t, dir, ['before'])
})

t.test('a journal that cannot be recreated refuses tokens as one that cannot be written, until it can', async t => {
  const dir = dataDir(t)
  const { log, logged } = logger()
  const cache = await open(t, dir, log)
  await cache.remember('before', 60_000)
  rmSync(dir, { recursive: true })
  // Where the data dir was, a file: no directory can be made there.
  writeFileSync(dir, '')
  await t.rejects(cache.remember('refused', 60_000), {
    code: 'FST_RENDEZVOUS_REPLAY_JOURNAL',
    statusCode: 503,
    message: `The replay journal ${cache.file}: was removed and cannot be recreated: ENOTDIR: not a directory, open '${join(dir, '.replay.')}`
  })
  t.equal(await cache.remember('refused', 60_000), 'replayed', 'a refused key is not offered again')
  await t.rejects(cache.remember('refused-2', 60_000), { code: 'FST_RENDEZVOUS_REPLAY_JOURNAL' })
  t.equal(cache.writable(), false, 'readiness says replay_journal_failing')
  t.same(logged.map(([level, msg]) => [level, msg]), [['error', 'the replay journal cannot be written; CONNECTs are refused with 503 until it can']], 'logged once')
  unlinkSync(dir)
  await until(() => cache.writable(), 3000, 'the journal recreated')
  t.same(logged.slice(1).map(([level, msg]) => [level, msg]), [['warn', RECREATED], ['info', 'the replay journal can be written again; tokens are accepted again']])
  t.equal(await cache.remember('after', 60_000), 'fresh')
  await replayedAfterRestart(t, dir, ['before', 'refused', 'refused-2', 'after'])
})
