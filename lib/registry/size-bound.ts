import { RegistryCorruptError } from '../errors'

/**
 * The largest ids.json read, in bytes. A record at its largest (a
 * 128-character ID, a 64-byte secret and the most old secrets a record
 * keeps, pretty-printed) is about 1.1 KB, so this holds some 60,000 of them,
 * three times as many with generated secrets. Anything bigger is not a
 * registry written by rendezvous, and reading it whole would cost seconds
 * and gigabytes of memory (or fail: a string has a maximum length).
 */
export const MAX_REGISTRY_BYTES = 64 * 1024 * 1024

export function assertRegistrySize (file: string, size: bigint): void {
  if (size > MAX_REGISTRY_BYTES) throw new RegistryCorruptError(file, `it is ${size} bytes, more than the ${MAX_REGISTRY_BYTES / 1024 / 1024} MiB a registry can need`)
}
