import { randomBytes } from 'node:crypto'
import { closeSync, fstatSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { ReplayJournalError } from '../errors'
import { makeDir } from '../make-dir'
import { assertPrivateDir } from '../registry/permissions'
import { writeAll, writeLiveEntries, type WriteSync } from './journal-rewrite'
import { JournalWatch, type JournalLog } from './journal-watch'
import { liveEntries, windowOf } from './live-entries'
import { MemoryReplayCache } from './memory-replay-cache'
import type { ReplayCache, ReplayVerdict } from './replay-cache'
import { claimJournal, journalLine, journalName, readJournals, releaseJournal, removeAll } from './replay-journal'

export type { JournalLog } from './journal-watch'

export interface FileReplayCacheOptions {
  /** The data dir; the journal is `replay.<pid>.<random>.journal` in it. */
  dataDir: string
  /** Live entries at most, as MemoryReplayCache. */
  maxEntries?: number
  /** Clock in ms since the epoch. Default Date.now: expiries in the journal must mean the same after a restart. */
  now?: () => number
  log?: JournalLog
  /**
   * How far past a token's own time the relay accepts it (the v1 token skew),
   * in ms. Default 0. It is recorded in the journal: the expiries there were
   * computed with it, so a start with a wider window extends every entry it
   * reads back by the difference, or a token accepted before could be
   * accepted again inside the new window.
   */
  windowMs?: number
  /** The write call, for tests that need a disk that fails. Default fs.writeSync. */
  writeSync?: WriteSync
}

// The journal is rewritten once it holds this many lines more than twice the
// live entries: the rewrite costs O(live), paid for by as many appends.
const COMPACT_SLACK = 10_000

/**
 * The replay cache of a single node with a data dir: MemoryReplayCache
 * answers, and every key it accepts is appended to a journal before the
 * verdict 'fresh' is returned, with one synchronous write. A restart, or a
 * crash right after the CONNECT's 200, reads the journal back, so a token is
 * never accepted twice inside its window. No fsync: the write is in the
 * kernel's page cache, which survives the process but not an OS crash or a
 * power loss (docs/security.md). A key that cannot be written is refused
 * (ReplayJournalError, answered 503 like a full cache), never accepted and
 * then forgotten.
 */
export class FileReplayCache implements ReplayCache {
  readonly file: string
  /** What open() found: live entries loaded and unreadable lines skipped. */
  readonly loaded: { entries: number, badLines: number, journals: number }
  readonly #dir: string
  readonly #memory: MemoryReplayCache
  readonly #now: () => number
  readonly #log: FileReplayCacheOptions['log']
  readonly #windowMs: number
  readonly #write: WriteSync
  readonly #watch: JournalWatch
  #fd = -1
  #lines = 0
  #retryCompactAt = 0
  // A failed write may have left half a line: the next one starts on a line of its own.
  #torn = false
  #failing = false
  #closed = false
  /** Whether a key was ever appended: a journal that never held one is removed at close. */
  #appended = false
  /** While a rewrite runs: the lines appended since it took its snapshot. */
  #pending: string[] | undefined
  /** The rewrite in flight, a compaction's or a recreation's. */
  #rewriting: Promise<void> | undefined

  /** Use FileReplayCache.open(): a cache built here has no journal yet, and refuses every token. */
  constructor (dir: string, memory: MemoryReplayCache, opts: FileReplayCacheOptions, loaded: FileReplayCache['loaded']) {
    this.#dir = dir
    this.file = join(dir, journalName())
    this.#memory = memory
    this.#now = opts.now ?? Date.now
    this.#log = opts.log
    this.#windowMs = windowOf(opts)
    this.#write = opts.writeSync ?? writeSync
    this.loaded = loaded
    this.#watch = new JournalWatch({
      file: this.file,
      dir,
      log: opts.log,
      closed: () => this.#closed,
      rewriting: () => this.#rewriting,
      rewrite: async () => await this.#startRewrite(),
      failed: (err) => this.#failed(err),
      recovered: () => this.#recovered(),
    })
  }

  /** Reads every journal in the data dir, keeps the live entries, and starts this process's journal with them. */
  static async open (opts: FileReplayCacheOptions): Promise<FileReplayCache> {
    const dir = resolve(opts.dataDir)
    await makeDir(dir)
    await assertPrivateDir(dir)
    const now = opts.now ?? Date.now
    const windowMs = windowOf(opts)
    const memory = new MemoryReplayCache({ maxEntries: opts.maxEntries, now })
    const { journals, orphanedTemps } = await readJournals(dir)
    const badLines = journals.reduce((sum, journal) => sum + journal.bad, 0)
    for (const [key, at] of liveEntries(journals, windowMs, now(), memory.room())) {
      // 'replayed': the same key in two journals, copied by a process that then died.
      await memory.remember(key, at - now())
    }
    const cache = new FileReplayCache(dir, memory, opts, { entries: memory.size, badLines, journals: journals.length })
    // Claimed before it exists, so that a cache opening beside it in this process never takes it for a predecessor's.
    claimJournal(cache.file)
    await cache.#rewrite().catch((err: unknown) => {
      releaseJournal(cache.file)
      // Without a journal, a restart would forget the tokens accepted from now on: refused, not started.
      throw new ReplayJournalError(cache.file, `cannot be created: ${(err as Error).message}; the relay must be able to write its data dir`)
    })
    // Only now that their live entries are in our journal.
    await removeAll([...journals.filter(j => j.orphaned && j.path !== cache.file).map(j => j.path), ...orphanedTemps])
    cache.#watch.start()
    return cache
  }

  /** Live entries, for metrics and tests. */
  get size (): number {
    return this.#memory.size
  }

  /** Entries it can still take, as MemoryReplayCache. */
  room (): number {
    return this.#memory.room()
  }

  async remember (key: string, ttlMs: number): Promise<ReplayVerdict> {
    const verdict = await this.#memory.remember(key, ttlMs)
    // A ttl of 0 is not kept in memory either: the token can no longer be accepted.
    if (verdict !== 'fresh' || ttlMs === 0) return verdict
    // The key stays in memory when this throws: the token is refused now, and a retry of it is a replay.
    this.#append(journalLine(key, this.#now() + ttlMs))
    // After the write, not before: the 200 goes out only once the file that holds the line is the one a restart reads.
    if (!this.#watch.inPlace()) await this.#watch.recreate()
    this.#recovered()
    return verdict
  }

  async close (): Promise<void> {
    this.#closed = true
    this.#watch.stop()
    if (this.#fd >= 0) closeSync(this.#fd)
    this.#fd = -1
    // A journal that never held a key (a server that failed to listen): the next start would only read it and
    // remove it. Not one whose keys merely expired: a start with a wider token window extends them again.
    if (this.loaded.entries === 0 && !this.#appended) {
      try { unlinkSync(this.file) } catch {}
    }
    releaseJournal(this.file)
    await this.#memory.close()
  }

  #append (line: string): void {
    try {
      if (this.#closed) throw new Error('closed')
      writeAll(this.#write, this.#fd, this.#torn ? '\n' + line : line)
    } catch (err) {
      this.#torn = true
      this.#failed(err as Error)
      throw new ReplayJournalError(this.file, `cannot be written: ${(err as Error).message}`)
    }
    this.#appended = true
    this.#torn = false
    this.#pending?.push(line)
    const due = ++this.#lines > 2 * this.#memory.size + COMPACT_SLACK && this.#lines >= this.#retryCompactAt
    if (due && this.#rewriting === undefined && !this.#watch.recreating) this.#compact()
  }

  /**
   * False while the last write to the journal failed, when every token is
   * refused (readiness says replay_journal_failing). Then it tries a write of
   * its own, an empty line that also ends whatever the failed write left: a
   * node that readiness takes out of rotation gets no more CONNECTs, whose
   * writes would otherwise be the only ones to find the disk repaired.
   */
  writable (): boolean {
    if (this.#closed) return !this.#failing
    if (!this.#watch.inPlace()) {
      this.#watch.check()
      return !this.#failing
    }
    if (!this.#failing) return true
    try {
      writeAll(this.#write, this.#fd, '\n')
    } catch {
      return false
    }
    this.#torn = false
    this.#recovered()
    return true
  }

  #recovered (): void {
    if (!this.#failing) return
    this.#failing = false
    this.#log?.info({ file: this.file }, 'the replay journal can be written again; tokens are accepted again')
  }

  #failed (err: Error): void {
    if (this.#failing) return
    this.#failing = true
    this.#log?.error({ err, file: this.file }, 'the replay journal cannot be written; CONNECTs are refused with 503 until it can')
  }

  // In the background: the appends made meanwhile go to the old file, as
  // ever, and are copied to the new one before it takes the name.
  #compact (): void {
    this.#startRewrite().catch((err: unknown) => {
      // Appends still work, so nothing is refused; the journal only grows until a rewrite succeeds.
      this.#retryCompactAt = this.#lines + COMPACT_SLACK
      // A journal removed meanwhile (its data dir with the temporary file) is the recreation's to report.
      if (!this.#closed && this.#watch.inPlace()) this.#log?.warn({ err, file: this.file }, 'the replay journal cannot be compacted; it keeps growing until it can')
    })
  }

  async #startRewrite (): Promise<void> {
    this.#pending = []
    this.#rewriting = this.#rewrite().finally(() => {
      this.#pending = undefined
      this.#rewriting = undefined
    })
    return await this.#rewriting
  }

  // Writes the live entries to a new file and renames it over the journal, so
  // that a crash at any point leaves one whole journal under the name.
  async #rewrite (): Promise<void> {
    const tmp = join(this.#dir, `.replay.${process.pid}.${randomBytes(6).toString('hex')}.tmp`)
    const fd = openSync(tmp, 'ax', 0o600)
    try {
      const lines = await writeLiveEntries(fd, this.#memory, this.#windowMs, this.#now, this.#write, () => this.#closed)
      const pending = this.#pending ?? []
      writeAll(this.#write, fd, pending.join(''))
      const st = fstatSync(fd)
      renameSync(tmp, this.file)
      if (this.#fd >= 0) closeSync(this.#fd)
      this.#fd = fd
      this.#watch.track(st)
      this.#lines = lines + pending.length
      this.#torn = false
    } catch (err) {
      closeSync(fd)
      try { unlinkSync(tmp) } catch {}
      throw err
    }
  }
}
