import { join } from 'node:path'
import { CliError } from './cli-error'
import type { Registry } from '../registry/registry'
import { openRedis } from '../cluster/redis-connection'
import { RedisRegistry } from '../cluster/redis-registry'
import { REGISTRY_FILE } from '../registry/file-registry'
import { readRegistry } from '../registry/registry-read'
import { shellQuote } from '../shell-quote'
import { selfCommand } from './invocation'
import { redactUrl } from './redact-url'

// A command line waits for a slow Redis longer than a node does, but not forever.
const REDIS_TIMEOUT_MS = 5000

/** Runs one `ids` command against the cluster's registry in Redis; the nodes learn of a change by pub/sub. */
export async function withRedisRegistry<T> (url: string, job: (registry: Registry) => Promise<T>): Promise<T> {
  const conn = openRedis(url)
  try {
    await conn.connect(REDIS_TIMEOUT_MS).catch((err: Error) => { throw new CliError(`cannot reach Redis: ${err.message}`, 1) })
    const registry = new RedisRegistry(conn, { watch: false, commandTimeout: REDIS_TIMEOUT_MS })
    await registry.ready()
    return await job(registry)
  } finally {
    await conn.close()
  }
}

/**
 * What serve says at start in cluster mode when the data dir's ids.json
 * holds IDs: a node serves the IDs in Redis only, and would otherwise
 * answer 404 for these without a word. Nothing when the file holds none,
 * or cannot be read (serve does not use it either way).
 */
export async function unusedFileIds (dataDir: string, redisUrl: string): Promise<string | undefined> {
  const file = join(dataDir, REGISTRY_FILE)
  const count = await readRegistry(dataDir, file, { present: false, writing: false, refused: () => {} })
    .then(snapshot => snapshot.records.size, () => 0)
  if (count === 0) return undefined
  const cli = selfCommand()
  return `${file} holds ${count === 1 ? '1 ID' : `${count} IDs`}, which cluster mode does not serve: its IDs are those in Redis. ` +
    `To serve one, add it there with its secret: ${cli} ids list --data-dir ${shellQuote(dataDir)} --show-secret, ` +
    `then ${cli} ids add --redis ${shellQuote(redactUrl(redisUrl))} --id ID --secret SECRET`
}
