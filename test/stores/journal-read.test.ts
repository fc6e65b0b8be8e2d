import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { FileReplayCache } from '../../lib/stores/file-replay-cache'
import { journalLine, parseJournal } from '../../lib/stores/replay-journal'

// How the journals in the data dir are read at start: what a damaged one says, and what the lines mean.

type Test = Parameters<Parameters<typeof t.test>[0]>[0]

// A pid no process has: Linux pids stay below 2^22.
const DEAD_PID = 4_194_999

function dataDir (t: Test): string {
  const root = mkdtempSync(join(tmpdir(), 'rv-journal-read-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  const dir = join(root, 'data')
  mkdirSync(dir, { mode: 0o700 })
  return dir
}

t.test('a journal that is a directory refuses the start with an error naming it', async t => {
  const dir = dataDir(t)
  const journal = join(dir, `replay.${DEAD_PID}.0badf00d.journal`)
  mkdirSync(journal, { mode: 0o700 })
  await t.rejects(FileReplayCache.open({ dataDir: dir }), {
    code: 'FST_RENDEZVOUS_REPLAY_JOURNAL',
    message: `The replay journal ${journal}: is not a regular file; move it out of the data dir`
  })
})

t.test('every line is read as JSON.parse reads the key, on the fast path or not', async t => {
  const keys = ['v1:hub-1:nonce', 'quote " inside', 'back\\slash', 'tab\tand newline\n', 'é and 😀', '']
  const at = 1_800_000_000_000
  const text = [
    '#window 120000\n',
    ...keys.map(key => journalLine(key, at)),
    `${at} "a raw\ttab"\n`,
    `${at} "spaces after the key"  \n`,
    `${at} "unterminated\n`,
    '12345678901234567 "seventeen digits"\n',
    ` ${at} "space first"\n`,
    `${at}x "not a number"\n`,
    '\n',
    `${at} "torn`
  ].join('')
  t.same(parseJournal(text), {
    windowMs: 120_000,
    entries: [...keys, 'spaces after the key'].map(key => ({ key, at })),
    bad: 6
  })
  t.same(parseJournal(''), { windowMs: 0, entries: [], bad: 0 })
  t.same(parseJournal('#window 5'), { windowMs: 0, entries: [], bad: 1 }, 'a header whose write never finished')
  t.same(parseJournal(journalLine('k', at) + '#window 5\n'), { windowMs: 0, entries: [{ key: 'k', at }], bad: 1 }, 'a header only counts first')
})

t.test('a key in several journals keeps its latest expiry, whichever is read first', async t => {
  const dir = dataDir(t)
  let time = 1_800_000_000_000
  const now = (): number => time
  const write = (name: string, lines: string[]): void => writeFileSync(join(dir, `replay.${DEAD_PID}.${name}.journal`), lines.join(''), { mode: 0o600 })
  write('0000000a', [journalLine('short-in-a', time + 10_000), journalLine('long-in-a', time + 100_000)])
  write('0000000b', [journalLine('short-in-a', time + 100_000), journalLine('long-in-a', time + 10_000)])
  const cache = await FileReplayCache.open({ dataDir: dir, now })
  t.teardown(() => cache.close())
  t.same(cache.loaded, { entries: 2, badLines: 0, journals: 2 })
  time += 50_000
  t.equal(await cache.remember('short-in-a', 1_000), 'replayed')
  t.equal(await cache.remember('long-in-a', 1_000), 'replayed')
})
