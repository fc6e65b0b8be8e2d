import { IdExistsError } from '../errors'
import type { AddIdentity, IdentityRecord, Registry, RotateSecret } from './registry'
import { createRecord, identityEnded, lookupKey, RemoveListeners, rotateRecord, sortRecords } from './records'

/** A registry held in this process only: for tests, and for embedding with IDs supplied in code. */
export class MemoryRegistry implements Registry {
  readonly #records = new Map<string, IdentityRecord>()
  readonly #listeners = new RemoveListeners()

  async ready (): Promise<void> {}

  get (id: string): IdentityRecord | undefined {
    const key = lookupKey(id)
    return key === undefined ? undefined : this.#records.get(key)
  }

  async list (): Promise<IdentityRecord[]> {
    return sortRecords(this.#records.values())
  }

  async add (input?: AddIdentity): Promise<IdentityRecord> {
    const record = createRecord(input)
    if (this.#records.has(record.id)) throw new IdExistsError(record.id)
    this.#records.set(record.id, record)
    return record
  }

  async remove (id: string): Promise<boolean> {
    const key = lookupKey(id)
    if (key === undefined || !this.#records.delete(key)) return false
    this.#listeners.fire([key])
    return true
  }

  async rotate (id: string, input: RotateSecret): Promise<IdentityRecord | undefined> {
    const key = lookupKey(id)
    const old = key === undefined ? undefined : this.#records.get(key)
    if (old === undefined) return undefined
    const record = rotateRecord(old, input)
    this.#records.set(old.id, record)
    if (identityEnded(old, record)) this.#listeners.fire([old.id])
    return record
  }

  onRemove (listener: (id: string) => void): () => void {
    return this.#listeners.add(listener)
  }

  async close (): Promise<void> {}
}
