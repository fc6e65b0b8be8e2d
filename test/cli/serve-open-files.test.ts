import t from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import type { Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { maxConnectionsWarning, openFileLimit, serveMaxConnections } from '../../lib/server/open-files'
import { buildProblem, CLI_MAIN, runCli, spawnProc } from '../helpers/cli'
import { bytesUntilClose, tcpFrom } from '../helpers/wire'

/*
 * Descriptors that run out are dropped in silence (libuv accepts and closes
 * what it cannot keep), so serve's total cap must trip first: by default it
 * is at most half the open-file limit, and a cap given at or past the limit
 * is warned about at start.
 */

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            150                  300                  files
`

t.test('the open-file limit is read from /proc/self/limits, and the default cap is half of it, at most 20000', async t => {
  t.equal(openFileLimit(() => LIMITS), 150)
  t.equal(openFileLimit(() => LIMITS.replace('150  ', 'unlimited')), undefined, 'unlimited')
  t.equal(openFileLimit(() => { throw new Error('ENOENT') }), undefined, 'not Linux')
  if (process.platform === 'linux') t.equal(openFileLimit(), Number(execFileSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim()), 'Node runs with its hard limit')
  t.same([serveMaxConnections(150), serveMaxConnections(1_048_576), serveMaxConnections(undefined), serveMaxConnections(1)], [75, 20_000, 20_000, 1])
  t.equal(maxConnectionsWarning(100, 150), undefined, 'below the limit: nothing to say')
  t.match(maxConnectionsWarning(150, 150), /^--max-connections 150 with an open-file limit of 150: descriptors would run out first/)
  t.match(maxConnectionsWarning(0, 150), /^no --max-connections cap \(0\) with an open-file limit of 150/)
  t.equal(maxConnectionsWarning(0, undefined), undefined, 'nothing is said where the limit is unknown')
})

const problem = buildProblem(t)
const prlimit = (() => { try { execFileSync('prlimit', ['--version'], { stdio: 'ignore' }); return undefined } catch { return 'prlimit is not installed' } })()
if (problem !== undefined) {
  t.fail(problem)
} else {
  t.test('under an open-file limit of 80, serve caps connections at 40 and says so in its log', { skip: process.platform !== 'linux' ? 'Linux only' : prlimit ?? false }, async t => {
    const dir = mkdtempSync(join(tmpdir(), 'rendezvous-nofile-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const serve = spawnProc(t, 'rendezvous serve', 'prlimit', ['--nofile=80:80', process.execPath, CLI_MAIN, 'serve', '--no-tls', '--port', '0', '--data-dir', join(dir, 'data'), '--max-connections-per-address', '0'])
    const [, port] = await serve.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)\//)
    const held: Socket[] = []
    t.teardown(() => { for (const s of held) s.destroy() })
    for (let i = 0; i < 40; i++) held.push(await tcpFrom(Number(port), `127.0.1.${i + 2}`))
    const refused = await tcpFrom(Number(port), '127.0.2.2')
    t.equal(await bytesUntilClose(refused), 0, 'the 41st connection is closed at accept')
    const [line] = await serve.waitFor(/.*"outcome":"total_cap".*/)
    t.match(JSON.parse(line!), { level: 30, address: '127.0.2.2', max: 40 })
  })

  t.test('a --max-connections at or past the open-file limit is warned about at start', { skip: process.platform !== 'linux' ? 'Linux only' : false }, async t => {
    const dir = mkdtempSync(join(tmpdir(), 'rendezvous-nofile-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const limit = openFileLimit()!
    const help = await runCli(t, ['serve', '--help'])
    t.equal(help.code, 0)
    for (const given of [String(limit), '0']) {
      const serve = spawnProc(t, 'rendezvous serve', process.execPath, [CLI_MAIN, 'serve', '--no-tls', '--port', '0', '--data-dir', join(dir, `data-${given}`), '--max-connections', given])
      await serve.waitFor(/listening on/)
      t.match(serve.stderr(), new RegExp(`^rendezvous: warning: .*open-file limit of ${limit}: descriptors would run out first`, 'm'), `--max-connections ${given}`)
    }
  })
}
