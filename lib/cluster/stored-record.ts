import { isValidId, isValidSecret } from '../registry/ids'
import { storedFields, storedPrevious } from '../registry/records'
import type { IdentityRecord } from '../registry/registry'

// How a record is stored as a value of the ID hash, and read back: the same
// fields as in ids.json (records.ts, storedFields). The rotation fields are
// written only while a rotation's overlap was set, the pair both or neither,
// `olderSecrets` only beside it; records written before rotation existed
// have none.

export function storedJson (record: IdentityRecord): string {
  return JSON.stringify({ id: record.id, ...storedFields(record) })
}

export function safeJson (text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text)
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? value as Record<string, unknown> : undefined
  } catch {
    return undefined
  }
}

/** A record as stored, or undefined for anything that is not one (the epoch and version fields, or damage). */
export function parseRecord (field: string, value: string): IdentityRecord | undefined {
  if (!isValidId(field) || field !== field.toLowerCase()) return undefined
  const raw = safeJson(value)
  if (raw === undefined || raw.id !== field || typeof raw.secret !== 'string' || !isValidSecret(raw.secret)) return undefined
  const createdAt = typeof raw.createdAt === 'string' ? raw.createdAt : new Date(0).toISOString()
  const previous = storedPrevious(raw)
  // A damaged rotation is a damaged record, as it makes the whole file unreadable in the file registry.
  if (typeof previous === 'string') return undefined
  return Object.freeze({ id: field, secret: raw.secret, createdAt, ...previous })
}
