import { RegistryNotSyncError } from '../errors'
import type { IdentityRecord, Registry } from './registry'

/**
 * `registry.get()`, which the relay calls inside Node's header callback and
 * must answer synchronously from a local view. A promise (an async store
 * wired in by mistake) is an error; its rejection is handled here, or a
 * store that is down would crash the process with an unhandled rejection.
 */
export function syncGet (registry: Pick<Registry, 'get'>, id: string): IdentityRecord | undefined {
  const record = registry.get(id) as unknown
  if (typeof (record as PromiseLike<unknown> | undefined)?.then === 'function') {
    (record as PromiseLike<unknown>).then(undefined, () => {})
    throw new RegistryNotSyncError()
  }
  return record as IdentityRecord | undefined
}
