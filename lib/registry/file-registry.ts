import { randomBytes } from 'node:crypto'
import { open, rename, unlink } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { IdExistsError, RegistryCorruptError, RegistryLockedError, RendezvousOptionError } from '../errors'
import { makeDir } from '../make-dir'
import { acquireLock, type HeldLock } from './file-lock'
import { dirKey, fileKey, keyOf, MISSING, syncDir } from './file-keys'
import { HealthListeners } from './health-listeners'
import { deadLeftovers, removeDeadLeftovers } from './leftovers'
import { writeFailure } from './write-failure'
import { assertPrivate, assertPrivateDir, assertPrivateIfPresent } from './permissions'
import { createRecord, identityEnded, lookupKey, pruneExpired, RemoveListeners, rotateRecord, sortRecords } from './records'
import type { AddIdentity, IdentityRecord, Registry, RotateSecret } from './registry'
import { parseRegistry, serializeRegistry, type Records } from './registry-file'

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

/** `present`: whether it was read from a file, rather than being the empty registry of a file not made yet. */
interface Snapshot { key: string, records: Records, present: boolean }

export const REGISTRY_FILE = 'ids.json'

/**
 * The largest ids.json read, in bytes. A record at its largest (a
 * 128-character ID, a 64-byte secret and the most old secrets a record
 * keeps, pretty-printed) is about 1.1 KB, so this holds some 60,000 of them,
 * three times as many with generated secrets. Anything bigger is not a
 * registry written by rendezvous, and reading it whole would cost seconds
 * and gigabytes of memory (or fail: a string has a maximum length).
 */
export const MAX_REGISTRY_BYTES = 64 * 1024 * 1024

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
      await this.#sweepAtStart()
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
    const key = await this.#statKey()
    // A failure is not tied to the file's key: the fix may be the directory's
    // mode, or its owner, which leave the file untouched. Those are judged
    // before the content is read; a content refused stays refused until the
    // file changes, so a huge or corrupt file is not read again at every poll.
    if (key === this.#key && !this.#failing) return
    if (key === this.#refused?.key) throw this.#refused.error
    this.#apply(await this.#read())
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
      const key = await this.#write(next, lock).catch((err: unknown) => { throw writeFailure(err, this.file) })
      if (key === undefined) return false
      this.#apply({ key, records: next, present: true })
      return true
    } finally {
      await lock.release()
    }
  }

  /**
   * A writer killed mid-write leaves its temporary copy, every secret in it:
   * removed at the start too, not only at the next write, which may be far
   * off. Under the lock, if it is free now; else its holder removes them.
   */
  async #sweepAtStart (): Promise<void> {
    if ((await deadLeftovers(this.#dataDir)).length === 0) return
    try {
      const lock = await acquireLock(this.file + '.lock', { staleMs: this.#lockStaleMs, timeoutMs: 0 })
      try {
        await removeDeadLeftovers(this.#dataDir)
      } finally {
        await lock.release()
      }
    } catch {}
  }

  /**
   * What a poll compares with #key. The directory's part: a chmod of the
   * data dir alone leaves ids.json as it was, yet a dir others can write
   * lets them replace the file, and must be noticed as the file's mode is.
   */
  async #statKey (): Promise<string> {
    const dir = await dirKey(this.#dataDir)
    return `${dir}|${await fileKey(this.file)}`
  }

  /** `writing`: a missing file is the empty registry, which the write makes, even when one was read before. */
  async #read (writing = false): Promise<Snapshot> {
    // Taken before the checks: a directory changed after them is judged again at the next poll.
    const dir = await dirKey(this.#dataDir)
    let handle
    try {
      handle = await open(this.file, 'r')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') throw new RegistryCorruptError(this.file, `${this.#dataDir} is a file, not a directory`)
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      // Deleted (or its whole data dir) while we serve: dropping every ID
      // for it would be silent, and is no more wanted than for a corrupt file.
      if (this.#present && !writing) throw new RegistryCorruptError(this.file, 'it is missing (it was there when last read); rendezvous ids add writes it anew')
      // No IDs yet, but a dir others can write is refused all the same: they could plant an ids.json in it.
      await assertPrivateIfPresent(this.#dataDir, 'directory')
      return { key: `${dir}|${MISSING}`, records: new Map(), present: false }
    }
    try {
      // fstat and read through one handle: writers replace the file by rename
      // and never write in place, so this key names exactly these bytes.
      const st = await handle.stat({ bigint: true })
      assertPrivate(this.file, { mode: Number(st.mode), uid: Number(st.uid) }, 'file')
      await assertPrivateDir(this.#dataDir)
      const key = `${dir}|${keyOf(st)}`
      try {
        if (st.size > MAX_REGISTRY_BYTES) throw new RegistryCorruptError(this.file, `it is ${st.size} bytes, more than the ${MAX_REGISTRY_BYTES / 1024 / 1024} MiB a registry can need`)
        return { key, records: parseRegistry(await handle.readFile('utf8'), this.file), present: true }
      } catch (err) {
        if ((err as { code?: unknown }).code === 'FST_RENDEZVOUS_REGISTRY_CORRUPT') this.#refused = { key, error: err as Error }
        throw err
      }
    } finally {
      await handle.close()
    }
  }

  /** Resolves to the new file's key, or undefined when `lock` was lost first: then nothing was written. */
  async #write (records: Records, lock: HeldLock): Promise<string | undefined> {
    const tmp = join(this.#dataDir, `.${REGISTRY_FILE}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`)
    const handle = await open(tmp, 'wx', 0o600)
    try {
      try {
        await handle.writeFile(serializeRegistry(records))
        await handle.sync()
      } finally {
        await handle.close()
      }
      // As late as can be: a breaker may have moved the lock away (file-lock.ts).
      if (!(await lock.held())) {
        await unlink(tmp).catch(() => {})
        return undefined
      }
      await rename(tmp, this.file)
    } catch (err) {
      await unlink(tmp).catch(() => {})
      throw err
    }
    await syncDir(this.#dataDir)
    // Taken after the rename, which changes ctime; we still hold the lock, so the file is ours.
    return await this.#statKey()
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
