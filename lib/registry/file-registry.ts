import { join, resolve } from 'node:path'
import { IdExistsError, RegistryLockedError, RendezvousOptionError } from '../errors'
import { makeDir } from '../make-dir'
import { acquireLock } from './file-lock'
import { HealthListeners } from './health-listeners'
import { removeDeadLeftovers, sweepLeftoversAtStart } from './leftovers'
import { writeFailure } from './write-failure'
import { assertPrivateDir } from './permissions'
import { createRecord, identityEnded, lookupKey, pruneExpired, RemoveListeners, rotateRecord, sortRecords } from './records'
import type { AddIdentity, IdentityRecord, Registry, RotateSecret } from './registry'
import type { Records } from './registry-file'
import { readRegistry, statKey, type Snapshot } from './registry-read'
import { writeRegistry } from './registry-write'

export interface FileRegistryOptions {
  /**
   * Directory that holds `ids.json`; created with mode 0700 on the first
   * write. A directory writable by other users, or an ids.json they can read
   * or write, is refused (RegistryInsecureError), as OpenSSH refuses loose keys.
   */
  dataDir: string
  /** How often to look for changes made by other processes. Default 250. */
  pollIntervalMs?: number
  /** Age after which a lock file whose owner cannot be checked is taken as abandoned. Default 10000. */
  lockStaleMs?: number
  /** How long add() and remove() wait for another writer's lock. Default 5000. */
  lockTimeoutMs?: number
}

export const REGISTRY_FILE = 'ids.json'
export { MAX_REGISTRY_BYTES } from './size-bound'

/** How often a writer starts again when a breaker moved its lock away and another writer took it. */
const LOCK_LOST_TRIES = 3

/**
 * IDs in `<dataDir>/ids.json`, shared by every process that points at the
 * same directory: the CLI writes, running servers poll. Writers serialise on
 * a lock file and re-read under it, so none loses another's update.
 */
export class FileRegistry implements Registry {
  readonly file: string
  readonly #dataDir: string
  readonly #pollIntervalMs: number
  readonly #lockStaleMs: number
  readonly #lockTimeoutMs: number
  readonly #listeners = new RemoveListeners()
  #view: Records = new Map()
  /**
   * Identity of the file content behind #view, and of the directory's mode
   * and owner it was judged with, to skip re-reading an unchanged file.
   */
  #key: string | undefined
  /** Whether the last read failed: until one succeeds, every poll looks again. */
  #failing = false
  /**
   * The key of a file whose content was refused (too big, corrupt), and why:
   * until its key changes, a poll answers that again rather than read it.
   */
  #refused: { key: string, error: Error } | undefined
  /** Whether the view was read from a file: if that file goes, the view is kept and the loss reported. */
  #present = false
  readonly #health = new HealthListeners()
  #ready: Promise<void> | undefined
  #timer: NodeJS.Timeout | undefined
  #polling = false
  #closed = false
  #queue: Promise<unknown> = Promise.resolve()

  constructor (options: FileRegistryOptions) {
    if (typeof options?.dataDir !== 'string' || options.dataDir === '') {
      throw new RendezvousOptionError('dataDir must be a non-empty string')
    }
    this.#pollIntervalMs = positive(options.pollIntervalMs, 250, 'pollIntervalMs')
    this.#lockStaleMs = positive(options.lockStaleMs, 10_000, 'lockStaleMs')
    this.#lockTimeoutMs = positive(options.lockTimeoutMs, 5_000, 'lockTimeoutMs')
    // Resolved now, so that a later chdir cannot point a long-lived server elsewhere.
    this.#dataDir = resolve(options.dataDir)
    this.file = join(this.#dataDir, REGISTRY_FILE)
  }

  ready (): Promise<void> {
    this.#ready ??= this.#serial(async () => {
      this.#apply(await this.#read())
      await sweepLeftoversAtStart(this.#dataDir, this.file + '.lock', this.#lockStaleMs)
      if (!this.#closed) {
        this.#timer = setInterval(() => { this.#poll().catch(() => {}) }, this.#pollIntervalMs)
        this.#timer.unref()
      }
    }).catch((err: unknown) => {
      // Once the file is repaired, a later ready() can succeed.
      this.#ready = undefined
      throw err
    })
    return this.#ready
  }

  get (id: string): IdentityRecord | undefined {
    const key = lookupKey(id)
    return key === undefined ? undefined : this.#view.get(key)
  }

  async list (): Promise<IdentityRecord[]> {
    // list() may wait, unlike get(), so it can afford to catch up with other writers first.
    await this.#refresh().catch(() => {})
    return sortRecords(this.#view.values())
  }

  async add (input?: AddIdentity): Promise<IdentityRecord> {
    const record = createRecord(input)
    await this.#mutate((records) => {
      if (records.has(record.id)) throw new IdExistsError(record.id)
      records.set(record.id, record)
      return true
    })
    return record
  }

  async remove (id: string): Promise<boolean> {
    const key = lookupKey(id)
    if (key === undefined) return false
    let removed = false
    await this.#mutate((records) => {
      removed = records.delete(key)
      return removed
    })
    return removed
  }

  async rotate (id: string, input: RotateSecret): Promise<IdentityRecord | undefined> {
    const key = lookupKey(id)
    if (key === undefined) return undefined
    let rotated: IdentityRecord | undefined
    await this.#mutate((records) => {
      const old = records.get(key)
      if (old === undefined) return false
      rotated = rotateRecord(old, input)
      records.set(key, rotated)
      return true
    })
    return rotated
  }

  onRemove (listener: (id: string) => void): () => void {
    return this.#listeners.add(listener)
  }

  onHealth (listener: (error: Error | undefined) => void): () => void {
    return this.#health.add(listener)
  }

  /** Rejects while the file cannot be read or parsed; the server then keeps serving its last good view. */
  async check (): Promise<void> {
    await this.#refresh()
  }

  async close (): Promise<void> {
    this.#closed = true
    clearInterval(this.#timer)
    this.#timer = undefined
    await this.#queue
  }

  /** Runs file work one job at a time, so that an older read never overwrites a newer view. */
  #serial<T> (job: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(job, job)
    this.#queue = run.catch(() => {})
    return run
  }

  async #poll (): Promise<void> {
    // A slow disk must not let ticks pile up behind one another.
    if (this.#polling || this.#closed) return
    this.#polling = true
    try {
      await this.#refresh()
    } catch {
      // A corrupt or unreadable file keeps the last good view: serving the IDs
      // we know beats dropping every parked hidden server over an editor's typo.
    } finally {
      this.#polling = false
    }
  }

  #refresh (): Promise<void> {
    return this.#serial(async () => {
      await this.#reload().catch((err: unknown) => {
        this.#failing = true
        this.#health.report(err as Error)
        throw err
      })
    })
  }

  async #reload (): Promise<void> {
    const key = await statKey(this.#dataDir, this.file)
    // A failure is not tied to the file's key: the fix may be the directory's
    // mode, or its owner, which leave the file untouched. Those are judged
    // before the content is read; a content refused stays refused until the
    // file changes, so a huge or corrupt file is not read again at every poll.
    if (key === this.#key && !this.#failing) return
    if (key === this.#refused?.key) throw this.#refused.error
    this.#apply(await this.#read())
  }

  #read (writing = false): Promise<Snapshot> {
    return readRegistry(this.#dataDir, this.file, {
      present: this.#present,
      writing,
      refused: (key, error) => { this.#refused = { key, error } },
    })
  }

  #mutate (change: (records: Records) => boolean): Promise<void> {
    return this.#serial(async () => {
      await makeDir(this.#dataDir)
      await assertPrivateDir(this.#dataDir)
      for (let attempt = 1; attempt <= LOCK_LOST_TRIES; attempt++) {
        if (await this.#mutateLocked(change)) return
      }
      throw new RegistryLockedError(this.file + '.lock', `by another writer: it was taken from this one ${LOCK_LOST_TRIES} times`)
    })
  }

  /** One read-change-write under the lock. Resolves false when the lock was lost before the write: nothing was written. */
  async #mutateLocked (change: (records: Records) => boolean): Promise<boolean> {
    const lock = await acquireLock(this.file + '.lock', { staleMs: this.#lockStaleMs, timeoutMs: this.#lockTimeoutMs })
      .catch((err: unknown) => { throw writeFailure(err, this.file) })
    try {
      // Re-read under the lock: the view may be up to one poll old, and
      // writing it back would undo another process's change. A corrupt file
      // throws here, before anything could overwrite it; a missing one is
      // written anew.
      const current = await this.#read(true)
      this.#apply(current)
      const next = new Map(current.records)
      if (!change(next)) return true
      // A rotated-out secret leaves the file with the first write after its
      // deadline: one replaced because it leaked should not stay on disk, nor
      // in the temporary copy of a writer killed before its rename.
      const nowMs = Date.now()
      for (const [id, record] of next) next.set(id, pruneExpired(record, nowMs))
      await removeDeadLeftovers(this.#dataDir)
      const key = await writeRegistry(this.#dataDir, this.file, next, lock).catch((err: unknown) => { throw writeFailure(err, this.file) })
      if (key === undefined) return false
      this.#apply({ key, records: next, present: true })
      return true
    } finally {
      await lock.release()
    }
  }

  #apply (snapshot: Snapshot): void {
    const gone: string[] = []
    for (const [id, old] of this.#view) {
      // Also an ID removed and added again between two polls.
      if (identityEnded(old, snapshot.records.get(id))) gone.push(id)
    }
    this.#view = snapshot.records
    this.#key = snapshot.key
    this.#present = snapshot.present
    this.#refused = undefined
    this.#failing = false
    this.#health.report(undefined)
    this.#listeners.fire(gone)
  }
}

function positive (value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new RendezvousOptionError(`${name} must be a positive number`)
  }
  return value
}
