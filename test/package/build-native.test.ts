import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { ROOT } from '../helpers/cli'

// The install script of the optional native splice never fails an install:
// without a compiler, or when told not to, it says so in one line and exits 0.

const SCRIPT = join(ROOT, 'scripts', 'build-native.js')

function build (env: NodeJS.ProcessEnv): { status: number | null, lines: string[] } {
  // A copy of the package's root is not needed: a failed build leaves the existing addon in place (it builds to a temporary name).
  const result = spawnSync(process.execPath, [SCRIPT], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 120_000 })
  return { status: result.status, lines: `${result.stdout}${result.stderr}`.split('\n').filter(Boolean) }
}

t.test('no C compiler: one line, exit 0', async t => {
  const { status, lines } = build({ CC: join(ROOT, 'no-such-compiler') })
  t.equal(status, 0)
  t.equal(lines.length, 1)
  t.match(lines[0], /native splice not built \(.*no-such-compiler: ENOENT\); the JavaScript splice is used/)
})

t.test('RENDEZVOUS_NATIVE=0: one line, exit 0', async t => {
  const { status, lines } = build({ RENDEZVOUS_NATIVE: '0' })
  t.equal(status, 0)
  t.same(lines, ['fastify-rendezvous: native splice not built (RENDEZVOUS_NATIVE=0); the JavaScript splice is used'])
})

t.test('a compiler that fails: one line, exit 0', async t => {
  const { status, lines } = build({ CC: 'false' })
  t.equal(status, 0)
  t.match(lines, [/native splice not built \(false exited 1\)/])
})

const cc = spawnSync('cc', ['--version'])
t.test('with a compiler it builds silently', { skip: cc.status === 0 ? false : 'no C compiler (cc) here' }, async t => {
  const { status, lines } = build({})
  t.equal(status, 0)
  t.same(lines, [])
  t.ok(existsSync(join(ROOT, 'native', 'build', 'splice.node')))
})
