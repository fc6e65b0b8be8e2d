import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { buildProblem, runCli, type CliResult } from '../helpers/cli'

/*
 * A Redis URL that ioredis cannot parse used to pass the CLI's check and fail
 * when serve connected, as "unexpected error: Invalid URL", exit 1; a URL of
 * the wrong scheme was echoed whole, password and all. Each is now one line
 * that names where the URL came from, exit 2, with the password as ***.
 */

type Test = Parameters<Parameters<typeof t.test>[0]>[0]

const PASSWORD = 'S3cretRedisPw'
const SECRET = 'cluster-secret-0123456789'
const UNPARSED = /must be a redis:\/\/ or rediss:\/\/ URL that parses \(a port up to 65535, an IPv6 address in brackets, special characters of the password %-encoded\), got "/

function refused (t: Test, res: CliResult, source: string, allowed: RegExp, shown: string): void {
  t.equal(res.code, 2, `exit 2: ${res.stderr}`)
  t.equal(res.stdout, '', 'nothing on stdout')
  t.match(res.stderr, /^rendezvous: [^\n]+\n$/, 'one line')
  t.ok(res.stderr.startsWith(`rendezvous: ${source} must be `), `names ${source}: ${res.stderr}`)
  t.match(res.stderr, allowed)
  t.ok(res.stderr.endsWith(`, got ${JSON.stringify(shown)}\n`), `shows ${shown}`)
  t.notOk(res.stderr.includes(PASSWORD), 'the password is never shown')
}

const problem = buildProblem(t)
if (problem !== undefined) {
  t.fail(problem)
} else {
  const serve = ['serve', '--no-tls', '--port', '0', '--cluster-secret', SECRET]
  const cases: Array<[string, string, RegExp]> = [
    [`redis://:${PASSWORD}@127.0.0.1:70000`, 'redis://:***@127.0.0.1:70000', UNPARSED],
    [`redis://:${PASSWORD}@[bad`, 'redis://:***@[bad', UNPARSED],
    [`redis://user:${PASSWORD}%zz@127.0.0.1:6379`, 'redis://user:***@127.0.0.1:6379', UNPARSED],
    [`http://:${PASSWORD}@127.0.0.1:6379`, 'http://:***@127.0.0.1:6379', /must be a redis:\/\/ or rediss:\/\/ URL, got "/]
  ]

  t.test('serve: a bad --redis, RENDEZVOUS_REDIS or redis in the config file is one line naming it, exit 2', async t => {
    const dir = t.testdir()
    for (const [url, shown, allowed] of cases) {
      refused(t, await runCli(t, [...serve, '--redis', url]), '--redis', allowed, shown)
      refused(t, await runCli(t, serve, { env: { RENDEZVOUS_REDIS: url } }), 'RENDEZVOUS_REDIS', allowed, shown)
      const file = join(dir, 'serve.json')
      writeFileSync(file, JSON.stringify({ redis: url }), { mode: 0o600 })
      refused(t, await runCli(t, [...serve, '--config', file]), `redis in ${file}`, allowed, shown)
    }
  })

  t.test('ids: the same checks for --redis and for the URL serve would use', async t => {
    const dir = t.testdir()
    for (const [url, shown, allowed] of cases) {
      refused(t, await runCli(t, ['ids', 'list', '--redis', url]), '--redis', allowed, shown)
      refused(t, await runCli(t, ['ids', 'add', '--json'], { env: { RENDEZVOUS_REDIS: url } }), 'RENDEZVOUS_REDIS', allowed, shown)
      const file = join(dir, 'serve.json')
      writeFileSync(file, JSON.stringify({ redis: url }), { mode: 0o600 })
      refused(t, await runCli(t, ['ids', 'list', '--config', file]), `redis in ${file}`, allowed, shown)
    }
  })
}
