import { randomBytes } from 'node:crypto'
import { IdExistsError, RedisOutcomeUnknownError, RedisUnreachableError, RegistryConflictError } from '../errors'
import { createRecord, identityEnded, lookupKey, RemoveListeners, rotateRecord, sortRecords } from '../registry/records'
import type { AddIdentity, IdentityRecord, Registry, RotateSecret } from '../registry/registry'
import { EPOCH_FIELD, Keys, VERSION_FIELD } from './keys'
import { timed, type RedisConnection } from './redis-connection'
import { ADD_SCRIPT, REMOVE_SCRIPT, REPLACE_SCRIPT } from './registry-scripts'
import { parseRecord, safeJson, storedJson } from './stored-record'

export interface RedisRegistryOptions {
  keyPrefix?: string
  /** Full re-reads of the ID hash, in ms, on top of pub/sub. Default 5000. */
  resyncInterval?: number
  /** Longest wait for one Redis command, in ms. Default 1000. */
  commandTimeout?: number
  /** First wait before a failed re-read after a reconnection is tried again, in ms; it doubles up to `commandTimeout`. Default 50. */
  catchUpDelay?: number
  /** Keep a live mirror (a node). A one-shot command line tool does not. Default true. */
  watch?: boolean
  /** Reads and compare-and-set writes one rotation may take while other writers change the same ID. Default 10. */
  rotateAttempts?: number
  /**
   * Run by each catch-up after a lost connection, once the IDs are read
   * again and before the mirror counts as fresh: what else this node must
   * give back to the Redis there now (the tokens it accepted). A failure
   * leaves the mirror stale, and the catch-up is tried again.
   */
  onCatchUp?: () => Promise<void>
}

// ioredis refuses at once, with this message, a command it cannot send (our clients have no offline queue): Redis never saw it.
const NOT_SENT = "Stream isn't writeable"

/** Where a command failed: a read, a read before a change (the change was never sent), or the change itself. */
type Stage = 'read' | 'before change' | 'change'

/**
 * A failed command as an operator can act on it, without ioredis' words: a
 * change that was sent and not answered may still be applied when Redis
 * resumes, so only one never sent says that nothing changed. Redis' own
 * error replies pass unchanged.
 */
function redisFailure (err: unknown, stage: Stage): unknown {
  if (!(err instanceof Error) || err.name === 'ReplyError') return err
  const notSent = err.message.includes(NOT_SENT)
  if (stage === 'change' && !notSent) return new RedisOutcomeUnknownError()
  const why = notSent ? 'the connection is down' : err.message.startsWith('Redis did not answer') ? 'Redis did not answer in time' : 'the connection was lost'
  return new RedisUnreachableError(stage === 'read' ? why : `${why}; nothing changed`)
}

async function classified<T> (work: Promise<T>, stage: Stage): Promise<T> {
  try {
    return await work
  } catch (err) {
    throw redisFailure(err, stage)
  }
}

interface Snapshot { epoch?: string, version: number, records: Map<string, IdentityRecord> }

/**
 * The registry of a cluster: Redis holds the IDs, and each node answers
 * `get` from a mirror in memory, because the relay decides inside Node's
 * header callback, where no I/O can happen. Changes reach the mirror by
 * pub/sub at once, and a periodic re-read repairs anything pub/sub missed.
 * While the mirror cannot be trusted, `stale()` says so, and the relay
 * answers 503 for what it would otherwise have to guess. A lost connection
 * makes it untrusted until the IDs are read again from the Redis that is
 * there now, which may have come back empty or older.
 */
export class RedisRegistry implements Registry {
  readonly #conn: RedisConnection
  readonly #keys: Keys
  readonly #resyncInterval: number
  readonly #timeout: number
  readonly #watch: boolean
  readonly #rotateAttempts: number
  readonly #listeners = new RemoveListeners()
  #records = new Map<string, IdentityRecord>()
  #epoch: string | undefined
  #version = 0
  #syncedAt = 0
  #timer: NodeJS.Timeout | undefined
  #syncing: Promise<void> | undefined
  #closed = false
  // Connections lost so far, and whether the mirror still waits for a re-read begun after the last loss.
  #losses = 0
  #behind = false
  #catchUp: NodeJS.Timeout | undefined
  #catchUpDelay = 0
  readonly #firstCatchUpDelay: number
  readonly #onCatchUp: (() => Promise<void>) | undefined

  constructor (conn: RedisConnection, opts: RedisRegistryOptions = {}) {
    this.#conn = conn
    this.#keys = new Keys(opts.keyPrefix ?? 'rendezvous:')
    this.#resyncInterval = opts.resyncInterval ?? 5000
    this.#timeout = opts.commandTimeout ?? 1000
    this.#watch = opts.watch ?? true
    this.#rotateAttempts = opts.rotateAttempts ?? 10
    this.#firstCatchUpDelay = opts.catchUpDelay ?? 50
    this.#onCatchUp = opts.onCatchUp
  }

  #ready: Promise<void> | undefined
  #syncAgain: Promise<void> | undefined

  /** Subscribes and reads the IDs once; later calls share the first. */
  async ready (): Promise<void> {
    this.#ready ??= this.#start()
    return await this.#ready
  }

  async #start (): Promise<void> {
    if (!this.#watch) return
    const sub = this.#conn.subscriber
    sub.on('message', this.#onMessage)
    // Whatever was published while the subscriber was away is lost, and the
    // Redis that answers now may hold other IDs: re-read once both are back.
    for (const c of [sub, this.#conn.client]) c.on('close', this.#onLost).on('ready', this.#reread)
    await timed(sub.subscribe(this.#keys.idsChannel), this.#timeout)
    await this.#sync()
    this.#timer = setInterval(() => { this.#sync().catch(() => {}) }, this.#resyncInterval)
    this.#timer.unref()
  }

  get (id: string): IdentityRecord | undefined {
    const key = lookupKey(id)
    return key === undefined ? undefined : this.#records.get(key)
  }

  /** True while the mirror cannot be trusted: Redis is unreachable, was lost and not read again since, or the last re-read is too old. */
  stale (): boolean {
    return this.#behind || !this.#conn.reachable() || Date.now() - this.#syncedAt > this.#resyncInterval * 3
  }

  reachable (): boolean {
    return !this.stale()
  }

  async list (): Promise<IdentityRecord[]> {
    return sortRecords((await classified(this.#read(), 'read')).records.values())
  }

  async add (input?: AddIdentity): Promise<IdentityRecord> {
    const record = createRecord(input)
    const version = await this.#eval(ADD_SCRIPT, record.id, storedJson(record))
    if (version === 0) throw new IdExistsError(record.id)
    this.#mirror(record, version)
    return record
  }

  async remove (id: string): Promise<boolean> {
    const key = lookupKey(id)
    if (key === undefined) return false
    if (await this.#eval(REMOVE_SCRIPT, key) === 0) return false
    this.#drop(key)
    return true
  }

  async rotate (id: string, input: RotateSecret): Promise<IdentityRecord | undefined> {
    const key = lookupKey(id)
    if (key === undefined) return undefined
    // The script writes only over the JSON read here; when another writer got
    // in between, read again and compute the rotation anew.
    for (let attempt = 0; attempt < this.#rotateAttempts; attempt++) {
      const stored = await classified(timed(this.#conn.client.hget(this.#keys.ids, key), this.#timeout), 'before change')
      const old = stored === null ? undefined : parseRecord(key, stored)
      if (stored === null || old === undefined) return undefined
      const record = rotateRecord(old, input)
      const version = await this.#eval(REPLACE_SCRIPT, key, storedJson(record), stored)
      if (version === 0) return undefined
      if (version > 0) {
        this.#mirror(record, version)
        return record
      }
    }
    throw new RegistryConflictError(key, this.#rotateAttempts)
  }

  onRemove (listener: (id: string) => void): () => void {
    return this.#listeners.add(listener)
  }

  async close (): Promise<void> {
    this.#closed = true
    clearInterval(this.#timer)
    clearTimeout(this.#catchUp)
    const sub = this.#conn.subscriber
    sub.removeListener('message', this.#onMessage)
    for (const c of [sub, this.#conn.client]) c.removeListener('close', this.#onLost).removeListener('ready', this.#reread)
  }

  async #eval (script: string, id: string, ...json: string[]): Promise<number> {
    // A client that is not ready would queue it (one given with an offline queue) or refuse it: either way it is not sent.
    if (this.#conn.client.status !== 'ready') throw new RedisUnreachableError('the connection is down; nothing changed')
    const epoch = randomBytes(8).toString('hex')
    return Number(await classified(timed(this.#conn.client.eval(script, 1, this.#keys.ids, this.#keys.idsChannel, id, epoch, ...json), this.#timeout), 'change'))
  }

  // Our own write, in the mirror before its pub/sub message comes back,
  // unless that message or a later change has arrived first.
  #mirror (record: IdentityRecord, version: number): void {
    if (version > this.#version) this.#put(record)
  }

  #put (record: IdentityRecord): void {
    const old = this.#records.get(record.id)
    this.#records.set(record.id, record)
    if (old !== undefined && identityEnded(old, record)) this.#listeners.fire([record.id])
  }

  async #read (): Promise<Snapshot> {
    const hash = await timed(this.#conn.client.hgetall(this.#keys.ids), this.#timeout)
    const records = new Map<string, IdentityRecord>()
    for (const [field, value] of Object.entries(hash)) {
      const record = parseRecord(field, value)
      if (record !== undefined) records.set(record.id, record)
    }
    return { epoch: hash[EPOCH_FIELD], version: Number(hash[VERSION_FIELD] ?? 0), records }
  }

  // One re-read at a time. A caller arriving meanwhile may have heard of a
  // change that the read on its way was sent before: one more read follows
  // that one, shared by every caller arriving before it starts.
  #sync (): Promise<void> {
    if (this.#syncing === undefined) {
      this.#syncing = this.#readAndApply().finally(() => { this.#syncing = undefined })
      return this.#syncing
    }
    this.#syncAgain ??= this.#syncing.catch(() => {}).then(() => {
      this.#syncAgain = undefined
      return this.#sync()
    })
    return this.#syncAgain
  }

  async #readAndApply (): Promise<void> {
    // Only a read sent with both connections up, and none lost before it came back, was answered by the Redis there is now.
    const losses = this.#losses
    const connected = this.#conn.connected()
    this.#apply(await this.#read())
    if (this.#behind) await this.#onCatchUp?.()
    if (connected && losses === this.#losses) this.#behind = false
  }

  #apply (snapshot: Snapshot): void {
    if (this.#closed) return
    // A snapshot read before a change that pub/sub already delivered must not undo it.
    if (snapshot.epoch === this.#epoch && snapshot.version < this.#version) {
      this.#syncedAt = Date.now()
      return
    }
    const before = this.#records
    this.#records = snapshot.records
    this.#epoch = snapshot.epoch
    this.#version = snapshot.version
    this.#syncedAt = Date.now()
    const gone = [...before].filter(([id, old]) => identityEnded(old, snapshot.records.get(id))).map(([id]) => id)
    this.#listeners.fire(gone)
  }

  readonly #onLost = (): void => {
    this.#losses++
    this.#behind = true
  }

  readonly #reread = (): void => {
    clearTimeout(this.#catchUp)
    this.#catchUp = undefined
    this.#sync().then(() => { this.#catchUpDelay = 0 }, () => {}).finally(() => { this.#retryCatchUp() })
  }

  // Until a re-read after the last loss succeeds, it is tried again soon, not at the next periodic one: the node refuses CONNECTs meanwhile.
  // While a connection is still down there is nothing to try: its 'ready' starts the next read.
  #retryCatchUp (): void {
    if (!this.#behind || this.#closed || this.#catchUp !== undefined || !this.#conn.connected()) return
    this.#catchUpDelay = Math.min(Math.max(this.#catchUpDelay * 2, this.#firstCatchUpDelay), this.#timeout)
    this.#catchUp = setTimeout(this.#reread, this.#catchUpDelay)
    this.#catchUp.unref()
  }

  readonly #onMessage = (channel: string, message: string): void => {
    if (channel !== this.#keys.idsChannel || this.#closed) return
    const [kind, epoch, versionText] = message.split(' ', 3)
    const rest = message.slice(kind.length + (epoch?.length ?? 0) + (versionText?.length ?? 0) + 3)
    const version = Number(versionText)
    if (epoch !== this.#epoch || !Number.isSafeInteger(version)) {
      this.#reread()
      return
    }
    if (version <= this.#version) return
    // A gap means a message was lost; the re-read fills it.
    if (version > this.#version + 1) this.#reread()
    this.#version = version
    if (kind === 'add') {
      const parsed = safeJson(rest)
      const record = parsed === undefined ? undefined : parseRecord(String(parsed.id), rest)
      if (record !== undefined) this.#put(record)
    } else if (kind === 'remove') {
      this.#drop(rest)
    }
  }

  #drop (id: string): void {
    if (this.#records.delete(id)) this.#listeners.fire([id])
  }
}
