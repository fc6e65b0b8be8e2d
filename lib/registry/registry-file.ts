import { RegistryCorruptError } from '../errors'
import { canonicalId, isValidSecret, secretProblem } from './ids'
import { storedFields, storedPrevious } from './records'
import type { IdentityRecord } from './registry'
import { registryWarning } from './warnings'

// The on-disk format of ids.json, version 1, apart from how the file is read,
// written and locked.

export type Records = Map<string, IdentityRecord>

export function serializeRegistry (records: Iterable<[string, IdentityRecord]>): string {
  // No prototype: `__proto__` is a valid ID, and on a plain object its entry would set the prototype and never be written.
  const ids: Record<string, Omit<IdentityRecord, 'id'>> = Object.create(null)
  for (const [id, record] of records) ids[id] = storedFields(record)
  return JSON.stringify({ version: 1, ids }, null, 2) + '\n'
}

/** Parses ids.json. Error messages never quote the file's text, which holds secrets. */
export function parseRegistry (text: string, file: string): Records {
  const corrupt = (reason: string): Error => new RegistryCorruptError(file, reason)
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch {
    // JSON.parse's own message quotes the text around the fault, which may be a secret.
    throw corrupt('not valid JSON')
  }
  if (!isPlainObject(data)) throw corrupt('not a JSON object')
  if (data.version !== 1) throw corrupt(`unsupported version ${typeof data.version === 'number' ? data.version : typeof data.version}`)
  if (!isPlainObject(data.ids)) throw corrupt('"ids" is not an object')

  const records: Records = new Map()
  for (const [rawId, entry] of Object.entries(data.ids)) {
    const id = canonicalId(rawId)
    if (id === undefined) throw corrupt(`invalid ID ${JSON.stringify(rawId.slice(0, 140))}`)
    if (records.has(id)) throw corrupt(`duplicate ID ${id}`)
    if (!isPlainObject(entry)) throw corrupt(`the entry of ID ${id} is not an object`)
    const { secret, createdAt } = entry
    if (typeof secret !== 'string' || !isValidSecret(secret)) throw corrupt(`invalid secret for ID ${id}`)
    warnOddSecret(file, id, secret)
    if (typeof createdAt !== 'string') throw corrupt(`invalid createdAt for ID ${id}`)
    const previous = storedPrevious(entry)
    if (typeof previous === 'string') throw corrupt(`invalid ${previous} for ID ${id}`)
    records.set(id, Object.freeze({ id, secret, createdAt, ...previous }))
  }
  return records
}

const warned = new Set<string>()

// An earlier version stored secrets of an impossible base32 length: the relay
// still accepts them, but other tools refuse them, so the operator is told once.
function warnOddSecret (file: string, id: string, secret: string): void {
  const problem = secretProblem(secret)
  if (problem === undefined || warned.has(`${file}\0${id}`)) return
  warned.add(`${file}\0${id}`)
  registryWarning(`${file}: the secret of ID ${id} is kept, but ${problem}; rotate it`, 'RENDEZVOUS_REGISTRY_ODD_SECRET')
}

function isPlainObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
