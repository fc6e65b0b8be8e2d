import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, writeSync as fsWriteSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setImmediate } from 'node:timers/promises'
import t from 'tap'
import { FileReplayCache, type FileReplayCacheOptions } from '../../lib/stores/file-replay-cache'
import { journalLine } from '../../lib/stores/replay-journal'
import { generateSecret } from '../../lib/registry/ids'
import { createTotp } from '../../lib/tokens/totp'
import { createV1Token } from '../../lib/tokens/v1'
import { createDefaultVerifier } from '../../lib/tokens/verifier'
import { until } from '../helpers/until'

type Test = Parameters<Parameters<typeof t.test>[0]>[0]

function dataDir (t: Test): string {
  const root = mkdtempSync(join(tmpdir(), 'rv-replay-journal-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  return join(root, 'data')
}

function clock (start = 1_800_000_000_000): { now: () => number, advance: (ms: number) => void } {
  let time = start
  return { now: () => time, advance: ms => { time += ms } }
}

async function open (t: Test, opts: FileReplayCacheOptions): Promise<FileReplayCache> {
  const cache = await FileReplayCache.open(opts)
  t.teardown(() => cache.close())
  return cache
}

// The entries' lines, without the header that records the window.
const lines = (file: string): string[] => readFileSync(file, 'utf8').split('\n').filter(line => line !== '' && !line.startsWith('#window '))

// A pid no process has: Linux pids stay below 2^22.
const DEAD_PID = 4_194_999

t.test('a key accepted before a close is replayed after the journal is opened again', async t => {
  const dir = dataDir(t)
  const first = await open(t, { dataDir: dir })
  t.equal(await first.remember('v1:hub-1:nonce-a', 60_000), 'fresh')
  t.equal(await first.remember('v1:hub-1:nonce-a', 60_000), 'replayed')
  t.match(first.file, new RegExp(`^${dir}/replay\\.${process.pid}\\.[0-9a-f]{8}\\.journal$`))
  t.equal(statSync(first.file).mode & 0o777, 0o600, 'the journal is private')
  t.equal(statSync(dir).mode & 0o777, 0o700, 'the data dir it made is private')
  // Not closed: as after a crash, the appended line is all there is.
  const second = await open(t, { dataDir: dir })
  t.same(second.loaded, { entries: 1, badLines: 0, journals: 1 })
  t.equal(await second.remember('v1:hub-1:nonce-a', 60_000), 'replayed')
  t.equal(await second.remember('v1:hub-1:nonce-b', 60_000), 'fresh')
})

t.test('a key whose window is over is not kept across a restart', async t => {
  const dir = dataDir(t)
  const c = clock()
  const first = await open(t, { dataDir: dir, now: c.now })
  await first.remember('short', 1_000)
  await first.remember('long', 100_000)
  await first.close()
  c.advance(1_000)
  const second = await open(t, { dataDir: dir, now: c.now })
  t.equal(second.loaded.entries, 1)
  t.same(lines(second.file).map(line => line.split(' ')[1]), ['"long"'], 'the start rewrote the journal without it')
  t.equal(await second.remember('short', 1_000), 'fresh', 'its window is over')
  t.equal(await second.remember('long', 1_000), 'replayed')
  c.advance(99_000)
  await second.close()
  const third = await open(t, { dataDir: dir, now: c.now })
  t.equal(third.loaded.entries, 0)
  t.same(lines(third.file), [])
})

t.test('the journal is compacted once it holds far more lines than live keys', async t => {
  const dir = dataDir(t)
  const c = clock()
  const cache = await open(t, { dataDir: dir, now: c.now })
  await cache.remember('kept', 10_000_000)
  let most = 0
  for (let i = 0; i < 10_010; i++) {
    await cache.remember(`brief-${i}`, 10)
    c.advance(10)
    if (i % 1000 === 0 || i > 9_990) most = Math.max(most, lines(cache.file).length)
    // A relay turns its event loop between CONNECTs; the compaction runs in those turns.
    if (i % 100 === 0) await setImmediate()
  }
  t.ok(most <= 10_105, `never much more than twice the live keys plus 10000 lines: ${most}`)
  await until(() => lines(cache.file).length < 20, 5_000, 'the rewrite')
  const left = lines(cache.file)
  t.ok(left.length < 20, `rewritten with the live keys only: ${left.length} lines`)
  t.ok(left.includes(journalLine('kept', 1_800_000_000_000 + 10_000_000).trim()), 'the live key with its expiry')
  await cache.remember('after', 10_000_000)
  const reopened = await open(t, { dataDir: dir, now: c.now })
  t.equal(await reopened.remember('kept', 1_000), 'replayed')
  t.equal(await reopened.remember('after', 1_000), 'replayed', 'appends after the rewrite land in the new file')
  t.same(readdirSync(dir).filter(name => name.endsWith('.tmp')), [], 'no temporary file left')
})

// Fills the journal with expired lines past the point where a compaction starts (2 x 2 live + 10000), without yielding.
async function dueForCompaction (cache: FileReplayCache, c: ReturnType<typeof clock>): Promise<void> {
  for (let i = 0; i < 10_010; i++) {
    await cache.remember(`brief-${i}`, 1)
    c.advance(1)
  }
}

t.test('keys accepted while a compaction runs are in the rewritten journal', async t => {
  const dir = dataDir(t)
  const c = clock()
  const cache = await open(t, { dataDir: dir, now: c.now })
  await cache.remember('kept', 10_000_000)
  await dueForCompaction(cache, c)
  // The compaction took its snapshot a few appends ago; these come after it.
  await cache.remember('during-1', 10_000_000)
  await cache.remember('during-2', 10_000_000)
  await until(() => lines(cache.file).length < 100, 5_000, 'the rewrite')
  // Lines appended meanwhile are copied as they are, expired or not.
  const live = lines(cache.file).filter(line => Number(line.split(' ')[0]) > c.now()).map(line => line.split(' ')[1])
  t.same(live.sort(), ['"during-1"', '"during-2"', '"kept"'])
  await cache.remember('after', 10_000_000)
  const reopened = await open(t, { dataDir: dir, now: c.now })
  for (const key of ['kept', 'during-1', 'during-2', 'after']) t.equal(await reopened.remember(key, 1_000), 'replayed', key)
})

t.test('a close stops a compaction and leaves the journal as it was', async t => {
  const dir = dataDir(t)
  const c = clock()
  const warned: string[] = []
  const log = { error: () => {}, info: () => {}, warn: (_: object, msg: string) => { warned.push(msg) } }
  const cache = await open(t, { dataDir: dir, now: c.now, log })
  await cache.remember('kept', 10_000_000)
  await dueForCompaction(cache, c)
  await cache.close()
  for (let i = 0; i < 5; i++) await setImmediate()
  t.same(readdirSync(dir).filter(name => name.endsWith('.tmp')), [], 'its temporary file is removed')
  t.same(warned, [], 'nothing to warn about')
  t.equal(lines(cache.file).length, 10_011, 'the journal is the old one, whole')
  const reopened = await open(t, { dataDir: dir, now: c.now })
  t.equal(await reopened.remember('kept', 1_000), 'replayed')
})

t.test('unreadable lines are skipped, the others loaded; a dead process\'s journal is merged and removed', async t => {
  const dir = dataDir(t)
  // A journal of this process's, closed with a key in it: kept.
  await open(t, { dataDir: dir }).then(async cache => { await cache.remember('earlier', 60_000); await cache.close() })
  const at = Date.now() + 60_000
  const orphan = join(dir, `replay.${DEAD_PID}.0badf00d.journal`)
  writeFileSync(orphan, [
    journalLine('first', at),
    'garbage without a key\n',
    `${at} {"not":"a string"}\n`,
    '\n',
    journalLine('second', at),
    `${at} "torn`
  ].join(''), { mode: 0o600 })
  const tempFile = join(dir, `.replay.${DEAD_PID}.0a1b2c.tmp`)
  writeFileSync(tempFile, 'half a rewrite', { mode: 0o600 })
  const cache = await open(t, { dataDir: dir })
  t.same(cache.loaded, { entries: 3, badLines: 3, journals: 2 })
  t.equal(await cache.remember('first', 1_000), 'replayed')
  t.equal(await cache.remember('second', 1_000), 'replayed')
  t.equal(await cache.remember('torn', 1_000), 'fresh', 'a line whose write never finished held no accepted key')
  t.notOk(existsSync(orphan), 'the dead process\'s journal is gone, its keys are in ours')
  t.notOk(existsSync(tempFile), 'so is its unfinished rewrite')
  const again = await open(t, { dataDir: dir })
  t.equal(await again.remember('second', 1_000), 'replayed', 'the merged keys survive the next restart')
})

t.test('a live process\'s journal is read and left alone', async t => {
  const dir = dataDir(t)
  await open(t, { dataDir: dir }).then(cache => cache.close())
  const live = join(dir, `replay.${process.ppid}.0badf00d.journal`)
  writeFileSync(live, journalLine('theirs', Date.now() + 60_000), { mode: 0o600 })
  const cache = await open(t, { dataDir: dir })
  t.equal(await cache.remember('theirs', 1_000), 'replayed')
  t.ok(existsSync(live), 'kept: its process still appends to it')
})

t.test('two caches of one process keep a journal each; a file with our pid that none opened is a predecessor\'s', async t => {
  const dir = dataDir(t)
  const predecessor = join(dir, `replay.${process.pid}.0badf00d.journal`)
  await open(t, { dataDir: dir }).then(cache => cache.close())
  writeFileSync(predecessor, journalLine('before-the-restart', Date.now() + 60_000), { mode: 0o600 })
  const one = await open(t, { dataDir: dir })
  t.notOk(existsSync(predecessor), 'merged and removed')
  await one.remember('one', 60_000)
  const two = await open(t, { dataDir: dir })
  t.not(two.file, one.file)
  t.ok(existsSync(one.file), 'the other open journal is left alone')
  t.equal(await two.remember('one', 1_000), 'replayed', 'and read')
  t.equal(await two.remember('before-the-restart', 1_000), 'replayed')
  await two.remember('two', 60_000)
  await one.remember('one-more', 60_000)
  t.same(lines(one.file).map(line => line.split(' ')[1]), ['"before-the-restart"', '"one"', '"one-more"'])
})

t.test('a journal or data dir other users can write is refused', async t => {
  const dir = dataDir(t)
  const cache = await open(t, { dataDir: dir })
  await cache.remember('kept', 60_000)
  await cache.close()
  chmodSync(cache.file, 0o620)
  await t.rejects(FileReplayCache.open({ dataDir: dir }), { code: 'FST_RENDEZVOUS_REGISTRY_INSECURE', message: /0620, writable by other users; run chmod 600/ })
  chmodSync(cache.file, 0o600)
  chmodSync(dir, 0o777)
  await t.rejects(FileReplayCache.open({ dataDir: dir }), { code: 'FST_RENDEZVOUS_REGISTRY_INSECURE', message: /chmod 700/ })
})

t.test('a journal that cannot be created refuses the start', async t => {
  const dir = dataDir(t)
  const cache = await open(t, { dataDir: dir })
  await cache.remember('a', 60_000)
  const writeSync = (): number => { throw Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' }) }
  await t.rejects(FileReplayCache.open({ dataDir: dir, writeSync }), { code: 'FST_RENDEZVOUS_REPLAY_JOURNAL', message: /cannot be created: EIO: i\/o error, write; the relay must be able to write its data dir/ })
  t.same(readdirSync(dir).filter(name => name.endsWith('.tmp')), [], 'no temporary file left')
  t.equal(readdirSync(dir).filter(name => name.endsWith('.journal')).length, 1, 'the journal it could not copy is kept')
})

t.test('more live keys than the cache holds refuse the start rather than drop some', async t => {
  const dir = dataDir(t)
  const cache = await open(t, { dataDir: dir })
  for (const key of ['a', 'b', 'c']) await cache.remember(key, 60_000)
  await t.rejects(FileReplayCache.open({ dataDir: dir, maxEntries: 2 }), { code: 'FST_RENDEZVOUS_REPLAY_JOURNAL', message: /raise replayCacheSize/ })
})

t.test('a key that cannot be written is refused, logged once, and the next good write starts a line of its own', async t => {
  const dir = dataDir(t)
  const logged: Array<[string, string]> = []
  const log = {
    error: (_: unknown, msg: string) => { logged.push(['error', msg]) },
    warn: (_: unknown, msg: string) => { logged.push(['warn', msg]) },
    info: (_: unknown, msg: string) => { logged.push(['info', msg]) }
  }
  let failing = false
  const writeSync = (fd: number, buffer: Buffer, offset: number, length: number): number => {
    if (!failing) return fsWriteSync(fd, buffer, offset, length)
    // Four bytes of the line, then the disk is full: what a torn write leaves behind.
    if (offset === 0) return fsWriteSync(fd, buffer, offset, 4)
    throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' })
  }
  const cache = await open(t, { dataDir: dir, log, writeSync })
  t.equal(await cache.remember('before', 60_000), 'fresh')
  failing = true
  await t.rejects(cache.remember('lost-1', 60_000), { code: 'FST_RENDEZVOUS_REPLAY_JOURNAL', statusCode: 503, message: /cannot be written: ENOSPC/ })
  await t.rejects(cache.remember('lost-2', 60_000), { code: 'FST_RENDEZVOUS_REPLAY_JOURNAL' })
  t.same(logged, [['error', 'the replay journal cannot be written; CONNECTs are refused with 503 until it can']], 'logged once')
  t.equal(await cache.remember('lost-1', 60_000), 'replayed', 'a refused key is not offered again')
  failing = false
  t.equal(await cache.remember('after', 60_000), 'fresh')
  t.equal(logged.length, 2)
  t.same(logged[1], ['info', 'the replay journal can be written again; tokens are accepted again'])
  const reopened = await open(t, { dataDir: dir })
  t.equal(reopened.loaded.badLines, 2, 'the two torn lines')
  t.equal(await reopened.remember('before', 1_000), 'replayed')
  t.equal(await reopened.remember('after', 1_000), 'replayed', 'not swallowed by the torn line before it')
  await cache.close()
  await t.rejects(cache.remember('closed', 1_000), { code: 'FST_RENDEZVOUS_REPLAY_JOURNAL' }, 'a closed journal refuses too')
})

// A token accepted under one window must stay refused after a restart with a wider one, for as long as the wider
// window accepts it: its entry's expiry was computed with the narrower window.
t.test('a restart with a wider token window keeps a used token refused for the whole new window', async t => {
  const dir = dataDir(t)
  const c = clock()
  const secret = generateSecret()
  const lookupSecret = (id: string): string | undefined => id === 'hub-1' ? secret : undefined
  const narrow = await open(t, { dataDir: dir, now: c.now, windowMs: 5_000 })
  const before = createDefaultVerifier({ lookupSecret, replayCache: narrow, totp: 'strict', skewSeconds: 5, now: c.now })
  const token = createV1Token('hub-1', secret, { now: c.now() })
  const code = createTotp(secret, c.now())
  t.match(await before('hub-1', token), { ok: true, kind: 'v1' })
  t.match(await before('hub-1', code), { ok: true, kind: 'totp' })
  t.match(readFileSync(narrow.file, 'utf8'), /^#window 5000\n/, 'the journal records the window its expiries were computed with')
  await narrow.close()
  // Past the narrow window's entry (5 s + 1 s + the 5 s margin), well inside the wide one.
  c.advance(15_000)
  const wide = await open(t, { dataDir: dir, now: c.now, windowMs: 120_000 })
  const after = createDefaultVerifier({ lookupSecret, replayCache: wide, totp: 'strict', skewSeconds: 120, now: c.now })
  t.same(await after('hub-1', token), { ok: false, reason: 'replayed', status: 401 }, 'the v1 token is a replay')
  t.same(await after('hub-1', code), { ok: false, reason: 'replayed', status: 401 }, 'so is the TOTP code, whose window the skew does not change')
  t.match(await after('hub-1', createV1Token('hub-1', secret, { now: c.now() })), { ok: true, kind: 'v1' }, 'a new token is accepted')
  t.match(readFileSync(wide.file, 'utf8'), /^#window 120000\n/)
  // Until the wide window is over for it: 120 s + 1 s + the margin after the token's own time.
  c.advance(111_000 - 1)
  t.same(await after('hub-1', token), { ok: false, reason: 'stale', status: 401 }, 'now too old for the window anyway')
  t.equal(await wide.remember(`v1:hub-1:${token.split('.')[2]!}`, 1_000), 'replayed', 'and its entry lives to the end of the window')
  c.advance(1)
  t.equal(await wide.remember(`v1:hub-1:${token.split('.')[2]!}`, 1_000), 'fresh', 'then it is dropped')
})

t.test('a journal written before the window was recorded is read as window 0: its entries get the whole new window', async t => {
  const dir = dataDir(t)
  const c = clock()
  // The data dir as a server that ran before leaves it: its journal closed empty, and removed.
  await open(t, { dataDir: dir, now: c.now }).then(cache => cache.close())
  const orphan = join(dir, `replay.${DEAD_PID}.0badf00d.journal`)
  // As the previous version wrote it: no header, expiries alone.
  writeFileSync(orphan, journalLine('v1:hub-1:old-nonce', c.now() + 1_000) + journalLine('v1:hub-1:gone', c.now() - 60_000), { mode: 0o600 })
  c.advance(60_000)
  const cache = await open(t, { dataDir: dir, now: c.now, windowMs: 120_000 })
  t.same(cache.loaded, { entries: 1, badLines: 0, journals: 1 }, 'every line is read')
  t.notOk(existsSync(orphan), 'merged into the new journal and removed')
  t.equal(await cache.remember('v1:hub-1:old-nonce', 1_000), 'replayed', 'kept for the new window past its old expiry')
  t.equal(readFileSync(cache.file, 'utf8').split('\n')[0], '#window 120000')
  t.ok(lines(cache.file).includes(journalLine('v1:hub-1:old-nonce', 1_800_000_000_000 + 1_000 + 120_000).trim()), 'with its extended expiry')
  await cache.close()
  const narrower = await open(t, { dataDir: dir, now: c.now, windowMs: 5_000 })
  c.advance(61_000 - 1)
  t.equal(await narrower.remember('v1:hub-1:old-nonce', 1_000), 'replayed', 'a narrower window never shortens an entry')
})

t.test('a compaction keeps the window line first', async t => {
  const dir = dataDir(t)
  const c = clock()
  const cache = await open(t, { dataDir: dir, now: c.now, windowMs: 5_000 })
  await cache.remember('kept', 20_000)
  await dueForCompaction(cache, c)
  await until(() => lines(cache.file).length < 100, 5_000, 'the rewrite')
  t.equal(readFileSync(cache.file, 'utf8').split('\n')[0], '#window 5000')
  // Past its expiry under the narrow window.
  c.advance(10_000)
  const wider = await open(t, { dataDir: dir, now: c.now, windowMs: 120_000 })
  t.equal(await wider.remember('kept', 1_000), 'replayed', 'extended by the wider window after the compaction')
})

t.test('a close removes a journal that never held a key; one that did is kept, even with every key expired', async t => {
  const dir = dataDir(t)
  const c = clock()
  const unused = await open(t, { dataDir: dir, now: c.now })
  t.ok(existsSync(unused.file))
  await unused.close()
  t.notOk(existsSync(unused.file), 'a server that accepted nothing (one that failed to listen) leaves no journal')
  // Expired under a 5 s window, still inside a wider one the next start may use.
  const narrow = await open(t, { dataDir: dir, now: c.now, windowMs: 5_000 })
  await narrow.remember('v1:hub-1:nonce', 5_000)
  c.advance(15_000)
  await narrow.close()
  t.ok(existsSync(narrow.file), 'kept: a start with a wider window extends its key again')
  const wide = await open(t, { dataDir: dir, now: c.now, windowMs: 120_000 })
  t.equal(await wide.remember('v1:hub-1:nonce', 1_000), 'replayed', 'refused inside the wider window')
})
