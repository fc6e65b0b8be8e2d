import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import Fastify from 'fastify'
import t from 'tap'
import rendezvous from '../../lib/index'
import { buildProblem, runCli, type CliResult } from '../helpers/cli'
import { CLUSTER_SECRET } from './nodes'
import { redisMissing, startRedis } from './redis-server'

/*
 * ioredis takes the database from a Redis URL's path (or ?db=) with
 * parseInt: `/abc` became SELECT NaN, which crashed serve and ids with the
 * Redis parser's stack trace, and `/1.5` selected database 1 without a
 * word. Such a URL is now refused before anything connects: a one-line
 * usage error naming where it came from (exit 2), or the plugin's
 * FST_RENDEZVOUS_BAD_OPTION. A number Redis refuses (past its `databases`
 * setting) is a one-line error too, saying so (exit 1).
 */

type Test = Parameters<Parameters<typeof t.test>[0]>[0]

const PASSWORD = 'S3cretRedisPw'
const RULE = 'must be a redis:// or rediss:// URL whose path is empty or a database number (/0, /1, ...), as is a db parameter, got "'
const BAD = ['/abc', '/1.5', '/-1', '/1/2', '/?db=abc', '?db=1.5']
// Each costs six CLI starts: a few, so that a loaded machine does not time them out.
const BAD_IN_CLI = ['/abc', '/1.5', '?db=abc']

function refused (t: Test, res: CliResult, source: string, shown: string): void {
  t.equal(res.code, 2, `exit 2: ${res.stderr}`)
  t.equal(res.stdout, '', 'nothing on stdout')
  t.equal(res.stderr, `rendezvous: ${source} ${RULE}${shown}"\n`, 'one line naming where the URL came from')
}

const problem = buildProblem(t)

t.test('serve and ids refuse a Redis URL whose database is not a number, naming the flag, variable or config key', { skip: problem ?? false }, async t => {
  const dir = t.testdir()
  const serve = ['serve', '--no-tls', '--port', '0', '--data-dir', dir, '--cluster-secret', CLUSTER_SECRET]
  for (const tail of BAD_IN_CLI) {
    // Nothing listens on port 1: the URL is refused before any connection is tried.
    const url = `redis://:${PASSWORD}@127.0.0.1:1${tail}`
    const shown = `redis://:***@127.0.0.1:1${tail}`
    refused(t, await runCli(t, [...serve, '--redis', url]), '--redis', shown)
    refused(t, await runCli(t, serve, { env: { RENDEZVOUS_REDIS: url } }), 'RENDEZVOUS_REDIS', shown)
    const file = join(dir, 'serve.json')
    writeFileSync(file, JSON.stringify({ redis: url }), { mode: 0o600 })
    refused(t, await runCli(t, [...serve, '--config', file]), `redis in ${file}`, shown)
    refused(t, await runCli(t, ['ids', 'list', '--redis', url]), '--redis', shown)
    refused(t, await runCli(t, ['ids', 'add', '--json'], { env: { RENDEZVOUS_REDIS: url } }), 'RENDEZVOUS_REDIS', shown)
    refused(t, await runCli(t, ['ids', 'remove', 'x', '--config', file]), `redis in ${file}`, shown)
  }
})

t.test('the plugin refuses such a URL as a bad option, without its password', async t => {
  for (const tail of BAD) {
    const app = Fastify()
    app.register(rendezvous, { redis: `redis://:${PASSWORD}@127.0.0.1:1${tail}`, cluster: { secret: CLUSTER_SECRET } })
    const err = await app.ready().then(() => undefined, (e: Error & { code?: string }) => e)
    t.equal(err?.code, 'FST_RENDEZVOUS_BAD_OPTION', tail)
    t.match(err?.message, /^Invalid rendezvous option: redis must be a URL whose path is empty or a database number \(\/0, \/1, \.\.\.\), as is a db parameter, got /, tail)
    t.notMatch(err?.message, PASSWORD)
    await app.close()
  }
})

t.test('a database number Redis does not have is one line, for serve, ids and the plugin', { skip: redisMissing() ?? problem ?? false }, async t => {
  const redis = await startRedis(t)
  const dir = t.testdir()
  const NO_SUCH = /the URL names database 99, which this Redis refuses \(ERR DB index is out of range\); a Redis has databases 0 to its `databases` setting minus 1, a Redis Cluster 0 only\n$/
  const served = await runCli(t, ['serve', '--no-tls', '--port', '0', '--data-dir', dir, '--cluster-secret', CLUSTER_SECRET, '--redis', `${redis.url}/99`])
  t.equal(served.code, 1, served.stderr)
  t.match(served.stderr, /^rendezvous: Cannot reach Redis: [^\n]+\n$/)
  t.match(served.stderr, NO_SUCH)
  for (const command of [['list'], ['add'], ['remove', 'x']]) {
    const res = await runCli(t, ['ids', ...command, '--redis', `${redis.url}/99`])
    t.equal(res.code, 1, res.stderr)
    t.match(res.stderr, /^rendezvous: cannot reach Redis: [^\n]+\n$/, command[0])
    t.match(res.stderr, NO_SUCH)
  }
  const app = Fastify()
  t.teardown(async () => { await app.close() })
  app.register(rendezvous, { redis: `${redis.url}/99`, cluster: { secret: CLUSTER_SECRET } })
  await t.rejects(async () => { await app.ready() }, { code: 'FST_RENDEZVOUS_REDIS_UNREACHABLE', message: /^Cannot reach Redis: the URL names database 99, which this Redis refuses/ })
  // A number it has is served as ever.
  const listed = await runCli(t, ['ids', 'list', '--json', '--redis', `${redis.url}/3`])
  t.equal(listed.code, 0, listed.stderr)
  t.equal(listed.stdout, '[]\n')
})
