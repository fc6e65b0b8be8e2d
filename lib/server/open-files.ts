import { SERVE_MAX_CONNECTIONS } from './serve-options'

export { openFileLimit } from '../open-file-limit'

/**
 * serve's total cap when none is given: 20000, or half the open-file limit
 * where that is lower. Running out of descriptors is silent (libuv accepts
 * and closes what it cannot keep, and any file the server opens fails), while
 * the cap refuses in the open: counted and logged. The other half is for
 * what the cap does not count, hidden servers' parked and spliced
 * connections (maxParked, maxSpliced) and files; those limits are the
 * operator's to fit in it.
 */
export function serveMaxConnections (limit: number | undefined): number {
  return limit === undefined ? SERVE_MAX_CONNECTIONS : Math.max(1, Math.min(SERVE_MAX_CONNECTIONS, Math.floor(limit / 2)))
}

/** A warning when a given cap cannot trip before descriptors run out, else undefined. */
export function maxConnectionsWarning (given: number, limit: number | undefined): string | undefined {
  if (limit === undefined || (given > 0 && given < limit)) return undefined
  const cap = given === 0 ? 'no --max-connections cap (0)' : `--max-connections ${given}`
  return `${cap} with an open-file limit of ${limit}: descriptors would run out first, and new connections be dropped without a log line; lower it, or raise the limit (LimitNOFILE=, ulimit -n)`
}
