/** What a Redis URL may hold after its host: the database ioredis selects. */
export const REDIS_DB_RULE = 'whose path is empty or a database number (/0, /1, ...), as is a db parameter'

/**
 * The part of a Redis URL that names no database ioredis can select (its
 * path, or a `db` query parameter, which ioredis reads too), or undefined
 * when it names a decimal number or nothing. ioredis reads the database
 * with parseInt, so `/abc` becomes SELECT NaN, which Redis refuses in a way
 * ioredis leaves unhandled (a crash with a stack trace), and `/1.5`
 * silently selects 1. A URL that does not parse is left to the caller's
 * own check.
 */
export function redisDbProblem (url: string): string | undefined {
  if (!URL.canParse(url)) return undefined
  const { pathname, searchParams } = new URL(url)
  if (pathname !== '' && pathname !== '/' && !/^\/\d+$/.test(pathname)) return `the path ${JSON.stringify(pathname)}`
  const db = searchParams.get('db')
  if (db !== null && !/^\d+$/.test(db)) return `db=${JSON.stringify(db)}`
  return undefined
}

/**
 * A reply Redis gave while the connection was set up, in words that say
 * what to check. A SELECT of the URL's database is the one such command
 * the URL decides: a number past the server's `databases` setting, or any
 * on a Redis Cluster, which has database 0 only.
 */
export function connectFailure (err: Error): string {
  const command = (err as { command?: { name?: unknown, args?: unknown[] } }).command
  if (err.name === 'ReplyError' && command?.name === 'select') {
    return `the URL names database ${String(command.args?.[0])}, which this Redis refuses (${err.message.split('\n')[0]}); a Redis has databases 0 to its \`databases\` setting minus 1, a Redis Cluster 0 only`
  }
  return err.message.split('\n')[0]!
}
