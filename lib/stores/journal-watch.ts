import { statSync } from 'node:fs'
import { ReplayJournalError } from '../errors'
import { makeDir } from '../make-dir'
import { assertPrivateDir } from '../registry/permissions'

/** What the cache logs with; a Fastify (pino) logger is one. */
export interface JournalLog {
  error: (fields: object, msg: string) => void
  warn: (fields: object, msg: string) => void
  info: (fields: object, msg: string) => void
}

/** What the watch needs of the cache whose journal it watches. */
export interface WatchedJournal {
  readonly file: string
  readonly dir: string
  readonly log: JournalLog | undefined
  closed: () => boolean
  /** The rewrite in flight, if any. */
  rewriting: () => Promise<void> | undefined
  /** Writes a new journal from memory and renames it over the name. */
  rewrite: () => Promise<void>
  failed: (err: Error) => void
  recovered: () => void
}

// How often an idle server looks whether its journal is still under its name.
const WATCH_MS = 1_000

/** Notices a journal removed while the server runs, and writes it again. */
export class JournalWatch {
  readonly #journal: WatchedJournal
  /** The journal's inode: the file under the name must still be this one. */
  #ino = -1
  #dev = -1
  #recreating: Promise<void> | undefined
  #timer: NodeJS.Timeout | undefined

  constructor (journal: WatchedJournal) {
    this.#journal = journal
  }

  start (): void {
    this.#timer = setInterval(() => this.check(), WATCH_MS).unref()
  }

  stop (): void {
    clearInterval(this.#timer)
  }

  /** The file a rewrite has just renamed over the name. */
  track (st: { ino: number, dev: number }): void {
    this.#ino = st.ino
    this.#dev = st.dev
  }

  get recreating (): boolean {
    return this.#recreating !== undefined
  }

  /**
   * Whether the file under the journal's name is still the one we write to.
   * A journal removed while the server runs (rm of the file, or of the whole
   * data dir) takes every append without an error, into a file no restart
   * will read. One stat of the path, after every append (so that no 200
   * goes out for a line only the removed file holds), at each readiness probe
   * and once a second: it measured about 2 µs, a remember() going from about
   * 8 to 10 µs, against the hundreds of µs a CONNECT costs the relay. Any
   * failure of the stat counts as not in place: the recreation says why.
   */
  inPlace (): boolean {
    try {
      const st = statSync(this.#journal.file, { throwIfNoEntry: false })
      return st !== undefined && st.ino === this.#ino && st.dev === this.#dev
    } catch {
      return false
    }
  }

  // The timer's and the readiness probe's look, for a server that gets no CONNECT meanwhile.
  check (): void {
    if (this.#journal.closed() || this.#recreating !== undefined || this.inPlace()) return
    this.recreate().catch(() => {})
  }

  /**
   * Writes a new journal from memory, which holds every key accepted, those
   * appended to the removed file included. Callers that find the journal gone
   * meanwhile wait for the same one. Throws ReplayJournalError when it cannot:
   * tokens are then refused as with a journal that cannot be written.
   */
  async recreate (): Promise<void> {
    this.#recreating ??= this.#recreateOnce().finally(() => { this.#recreating = undefined })
    return await this.#recreating
  }

  async #recreateOnce (): Promise<void> {
    const journal = this.#journal
    // A compaction in flight renames a whole journal into place when the data dir is still there.
    await journal.rewriting()?.catch(() => {})
    if (this.inPlace()) return
    try {
      if (journal.closed()) throw new Error('closed')
      // As at start: the data dir private, its own directory made again if it is gone.
      await makeDir(journal.dir)
      await assertPrivateDir(journal.dir)
      await journal.rewrite()
    } catch (err) {
      // A close meanwhile stops the rewrite: nothing to report.
      if (!journal.closed()) journal.failed(err as Error)
      throw new ReplayJournalError(journal.file, `was removed and cannot be recreated: ${(err as Error).message}`)
    }
    journal.log?.warn({ file: journal.file }, 'the replay journal was removed while the server ran; it was recreated from memory with every token still inside its window')
    journal.recovered()
  }
}
