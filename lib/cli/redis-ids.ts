import { CliError } from './cli-error'
import type { Registry } from '../registry/registry'
import { openRedis } from '../cluster/redis-connection'
import { RedisRegistry } from '../cluster/redis-registry'

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
