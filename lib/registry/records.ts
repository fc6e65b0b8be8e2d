import { canonicalId, canonicalSecret, generateId, generateSecret, isValidSecret } from './ids'
import { InvalidIdError } from '../errors'
import type { AddIdentity, IdentityRecord, RotateSecret } from './registry'

/**
 * Validates and completes the input of `Registry.add`. Shared so that every
 * registry refuses the same IDs and secrets with the same error codes.
 */
export function createRecord (input: AddIdentity = {}, now: Date = new Date()): IdentityRecord {
  let id: string | undefined
  if (input.id === undefined) {
    id = generateId()
  } else if (typeof input.id === 'string') {
    id = canonicalId(input.id)
  }
  if (id === undefined) throw new InvalidIdError(JSON.stringify(String(input.id).slice(0, 140)))

  const secret = input.secret === undefined ? generateSecret() : canonicalSecret(input.secret)

  return Object.freeze({ id, secret, createdAt: now.toISOString() })
}

/** The record after a secret rotation: same ID and creation time, the old secret kept for the overlap. */
export function rotateRecord (record: IdentityRecord, input: RotateSecret, now: Date = new Date()): IdentityRecord {
  const secret = input.secret === undefined ? generateSecret() : canonicalSecret(input.secret)
  const overlapMs = input.overlapMs
  if (typeof overlapMs !== 'number' || !Number.isFinite(overlapMs) || overlapMs < 0) {
    throw new RangeError('overlapMs must be a non-negative number')
  }
  const { id, createdAt } = record
  if (overlapMs === 0) return Object.freeze({ id, secret, createdAt })
  const previousExpiresAt = new Date(now.getTime() + overlapMs).toISOString()
  return Object.freeze({ id, secret, createdAt, previousSecret: record.secret, previousExpiresAt })
}

/** The old secret of a rotated record while its overlap lasts, else undefined. */
export function previousSecret (record: IdentityRecord | undefined, nowMs: number = Date.now()): string | undefined {
  if (record?.previousSecret === undefined || record.previousExpiresAt === undefined) return undefined
  return Date.parse(record.previousExpiresAt) > nowMs ? record.previousSecret : undefined
}

/**
 * Whether the connections parked under `old` must go now that the view holds
 * `now` instead. An ID removed and added again is a different identity, and
 * a rotation without overlap cuts the old secret off at once; a rotation with
 * an overlap keeps the old secret, and so keeps those connections.
 */
export function identityEnded (old: IdentityRecord, now: IdentityRecord | undefined): boolean {
  if (now === undefined || now.createdAt !== old.createdAt) return true
  return now.secret !== old.secret && now.previousSecret !== old.secret
}

/**
 * A record's fields as every registry stores them, without its ID: the
 * rotation fields only while a rotation's overlap lasts, both or neither.
 */
export function storedFields ({ secret, createdAt, previousSecret, previousExpiresAt }: IdentityRecord): Omit<IdentityRecord, 'id'> {
  return previousSecret === undefined ? { secret, createdAt } : { secret, createdAt, previousSecret, previousExpiresAt }
}

/**
 * The rotation fields of a stored entry, both or neither (records written
 * before rotation existed have neither), or the name of the one that is
 * damaged.
 */
export function storedPrevious (entry: Record<string, unknown>): Pick<IdentityRecord, 'previousSecret' | 'previousExpiresAt'> | 'previousSecret' | 'previousExpiresAt' {
  const { previousSecret, previousExpiresAt } = entry
  if (previousSecret === undefined && previousExpiresAt === undefined) return {}
  if (typeof previousSecret !== 'string' || !isValidSecret(previousSecret)) return 'previousSecret'
  if (typeof previousExpiresAt !== 'string' || Number.isNaN(Date.parse(previousExpiresAt))) return 'previousExpiresAt'
  return { previousSecret, previousExpiresAt }
}

/** Canonical form of a lookup key, or undefined when it cannot name any ID. */
export function lookupKey (id: unknown): string | undefined {
  return typeof id === 'string' ? canonicalId(id) : undefined
}

export function sortRecords (records: Iterable<IdentityRecord>): IdentityRecord[] {
  return [...records].sort((a, b) =>
    a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
}

export class RemoveListeners {
  // Entries, not the functions themselves, so one listener registered twice unsubscribes once.
  readonly #entries = new Set<{ listener: (id: string) => void }>()

  add (listener: (id: string) => void): () => void {
    const entry = { listener }
    this.#entries.add(entry)
    return () => { this.#entries.delete(entry) }
  }

  fire (ids: Iterable<string>): void {
    const entries = [...this.#entries]
    for (const id of ids) {
      for (const { listener } of entries) {
        try {
          listener(id)
        } catch (err) {
          // A faulty listener must neither stop the others nor crash the poller
          // that fired it, yet it should not vanish silently either.
          process.emitWarning(`rendezvous: an onRemove listener threw: ${(err as Error)?.message ?? String(err)}`)
        }
      }
    }
  }
}
