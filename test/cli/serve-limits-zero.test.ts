import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { buildProblem, runCli, servePlainWithId, type CliResult } from '../helpers/cli'
import { basicExchange } from '../helpers/wire'

/*
 * What 0 does to serve's limits. --replay-cache-size 0 and
 * --max-pending-connects 0 would refuse every token or every CONNECT while
 * /readyz says ready: refused as bad values, exit 2, wherever they come from.
 * --max-waiters 0 and --max-waiters-per-id 0 let no client wait, and the 503
 * says which of the two refused.
 */

type Test = Parameters<Parameters<typeof t.test>[0]>[0]

function refused (t: Test, res: CliResult, source: string, flag: string): void {
  t.equal(res.code, 2, `${source}: exit 2 (${res.signal ?? ''} ${res.stderr})`)
  t.equal(res.stderr, `rendezvous: ${source} must be an integer from 1 to 10000000, got "0"\n`, `${flag}: one line naming ${source}`)
  t.notMatch(res.stdout, /listening on/, 'never listened')
}

const problem = buildProblem(t)
if (problem !== undefined) {
  t.fail(problem)
} else {
  t.test('--replay-cache-size 0 and --max-pending-connects 0 are refused at the command line, from a flag, a variable or the file', async t => {
    const dir = t.testdir()
    const serve = ['serve', '--no-tls', '--port', '0', '--data-dir', join(dir, 'data')]
    for (const [key, flag, variable] of [['replayCacheSize', '--replay-cache-size', 'RENDEZVOUS_REPLAY_CACHE_SIZE'], ['maxPendingConnects', '--max-pending-connects', 'RENDEZVOUS_MAX_PENDING_CONNECTS']]) {
      // Bounded: a 0 let through starts a server that would otherwise run until killed.
      refused(t, await runCli(t, [...serve, flag, '0'], { timeoutMs: 5000 }), flag, flag)
      refused(t, await runCli(t, serve, { env: { [variable]: '0' }, timeoutMs: 5000 }), variable, flag)
      const file = join(dir, `${key}.json`)
      writeFileSync(file, JSON.stringify({ [key]: 0 }))
      refused(t, await runCli(t, [...serve, '--config', file], { timeoutMs: 5000 }), `${key} in ${file}`, flag)
    }
  })

  for (const [flag, message] of [['--max-waiters', 'too many clients waiting in all'], ['--max-waiters-per-id', 'too many clients waiting for this ID']]) {
    t.test(`${flag} 0: no client waits, and the 503 names that limit`, async t => {
      const { port } = await servePlainWithId(t, 'hub-1', [flag, '0', '--wait-timeout', '30', '--retry-after', '7'])
      const started = Date.now()
      const answer = await basicExchange(port, 'hub-1')
      t.equal(answer, `HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${message.length + 1}\r\nConnection: close\r\nRetry-After: 7\r\n\r\n${message}\n`)
      t.ok(Date.now() - started < 10_000, 'answered at once, not after the 30 s wait')
    })
  }
}
