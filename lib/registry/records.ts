import { canonicalId, canonicalSecret, generateId, generateSecret, isValidSecret } from './ids'
import { InvalidIdError, OldSecretsFullError, SecretUnchangedError } from '../errors'
import type { AddIdentity, IdentityRecord, OldSecret, RotateSecret } from './registry'

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

/**
 * Most old secrets one record keeps. Each rotation inside another's overlap
 * adds one; past this many, rotate() refuses rather than cut short a
 * deadline it promised.
 */
export const MAX_OLD_SECRETS = 4

/** The old secrets of a record, the most recently replaced first, expired ones included. */
export function oldSecrets (record: IdentityRecord): OldSecret[] {
  const { previousSecret, previousExpiresAt, olderSecrets = [] } = record
  if (previousSecret === undefined || previousExpiresAt === undefined) return []
  return [{ secret: previousSecret, expiresAt: previousExpiresAt }, ...olderSecrets]
}

/**
 * A record with these old secrets: the first in the pair of fields every
 * version knows, so a record with one old secret reads as it always did;
 * the rest in `olderSecrets`.
 */
function withOldSecrets ({ id, createdAt }: IdentityRecord, secret: string, old: OldSecret[]): IdentityRecord {
  if (old.length === 0) return Object.freeze({ id, secret, createdAt })
  const [first, ...rest] = old
  const olderSecrets = rest.length === 0 ? {} : { olderSecrets: Object.freeze(rest.map(o => Object.freeze({ secret: o.secret, expiresAt: o.expiresAt }))) }
  return Object.freeze({ id, secret, createdAt, previousSecret: first.secret, previousExpiresAt: first.expiresAt, ...olderSecrets })
}

const live = (old: OldSecret, nowMs: number): boolean => Date.parse(old.expiresAt) > nowMs

/**
 * The record after a secret rotation: same ID and creation time, the
 * replaced secret kept for the overlap, and the secrets of earlier
 * rotations each until its own deadline. An overlap of 0 is the emergency
 * revoke: it drops every old secret, whatever deadline it was promised.
 */
export function rotateRecord (record: IdentityRecord, input: RotateSecret, now: Date = new Date()): IdentityRecord {
  const secret = input.secret === undefined ? generateSecret() : canonicalSecret(input.secret)
  const overlapMs = input.overlapMs
  if (typeof overlapMs !== 'number' || !Number.isFinite(overlapMs) || overlapMs < 0) {
    throw new RangeError('overlapMs must be a non-negative number')
  }
  // Such a rotation would replace nothing, and the deadline it answers with would be another secret's.
  if (secret === record.secret) throw new SecretUnchangedError(record.id)
  if (overlapMs === 0) return withOldSecrets(record, secret, [])
  const kept = oldSecrets(record).filter(o => live(o, now.getTime()))
  const replaced = { secret: record.secret, expiresAt: new Date(now.getTime() + overlapMs).toISOString() }
  // A secret rotated back into use is current, not old; and each old secret is kept once.
  const seen = new Set([secret])
  const old: OldSecret[] = []
  for (const o of [replaced, ...kept]) {
    if (!seen.has(o.secret)) old.push(o)
    seen.add(o.secret)
  }
  // Only a rotation that adds one is refused: one back to an old secret swaps that for the replaced one.
  if (old.length > MAX_OLD_SECRETS && old.length > kept.length) {
    const next = kept.reduce((a, b) => Date.parse(b.expiresAt) < Date.parse(a.expiresAt) ? b : a)
    throw new OldSecretsFullError(record.id, kept.length, next.expiresAt)
  }
  return withOldSecrets(record, secret, old)
}

/** The record without its expired old secrets: itself when none has expired. */
export function pruneExpired (record: IdentityRecord, nowMs: number = Date.now()): IdentityRecord {
  const old = oldSecrets(record)
  const kept = old.filter(o => live(o, nowMs))
  return kept.length === old.length ? record : withOldSecrets(record, record.secret, kept)
}

/** The old secrets of a rotated record whose overlap lasts. */
export function previousSecrets (record: IdentityRecord | undefined, nowMs: number = Date.now()): string[] {
  return record === undefined ? [] : oldSecrets(record).filter(o => live(o, nowMs)).map(o => o.secret)
}

/**
 * Whether the connections parked under `old` must go now that the view holds
 * `now` instead. An ID removed and added again is a different identity, and
 * a rotation without overlap cuts every old secret off at once; a rotation
 * with an overlap keeps the replaced secret, and the secrets earlier
 * rotations promised, and so keeps those connections. An old secret
 * dropped once its deadline has passed ends nothing: it was refused already.
 */
export function identityEnded (old: IdentityRecord, now: IdentityRecord | undefined, nowMs: number = Date.now()): boolean {
  if (now === undefined || now.createdAt !== old.createdAt) return true
  const accepted = new Set([now.secret, ...oldSecrets(now).map(o => o.secret)])
  return [old.secret, ...previousSecrets(old, nowMs)].some(secret => !accepted.has(secret))
}

/**
 * A record's fields as every registry stores them, without its ID: the
 * rotation fields only while a rotation's overlap was set, the pair both or
 * neither, `olderSecrets` only beside them.
 */
export function storedFields (record: IdentityRecord): Omit<IdentityRecord, 'id'> {
  const { secret, createdAt, previousSecret, previousExpiresAt, olderSecrets } = record
  if (previousSecret === undefined) return { secret, createdAt }
  return olderSecrets === undefined || olderSecrets.length === 0
    ? { secret, createdAt, previousSecret, previousExpiresAt }
    : { secret, createdAt, previousSecret, previousExpiresAt, olderSecrets }
}

type StoredPrevious = Pick<IdentityRecord, 'previousSecret' | 'previousExpiresAt' | 'olderSecrets'>

/**
 * The rotation fields of a stored entry (records written before rotation
 * existed have none), or the name of the one that is damaged.
 */
export function storedPrevious (entry: Record<string, unknown>): StoredPrevious | 'previousSecret' | 'previousExpiresAt' | 'olderSecrets' {
  const { previousSecret, previousExpiresAt, olderSecrets } = entry
  if (previousSecret === undefined && previousExpiresAt === undefined) return olderSecrets === undefined ? {} : 'olderSecrets'
  if (typeof previousSecret !== 'string' || !isValidSecret(previousSecret)) return 'previousSecret'
  if (!isDate(previousExpiresAt)) return 'previousExpiresAt'
  if (olderSecrets === undefined) return { previousSecret, previousExpiresAt }
  const older = storedOlder(olderSecrets)
  if (older === undefined) return 'olderSecrets'
  return older.length === 0 ? { previousSecret, previousExpiresAt } : { previousSecret, previousExpiresAt, olderSecrets: older }
}

function storedOlder (value: unknown): readonly OldSecret[] | undefined {
  if (!Array.isArray(value)) return undefined
  const older: OldSecret[] = []
  for (const item of value as unknown[]) {
    if (typeof item !== 'object' || item === null) return undefined
    const { secret, expiresAt } = item as Record<string, unknown>
    if (typeof secret !== 'string' || !isValidSecret(secret) || !isDate(expiresAt)) return undefined
    older.push(Object.freeze({ secret, expiresAt }))
  }
  return Object.freeze(older)
}

const isDate = (value: unknown): value is string => typeof value === 'string' && !Number.isNaN(Date.parse(value))

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
