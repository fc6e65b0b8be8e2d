import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { buildProblem, CLI_MAIN, ROOT } from '../helpers/cli'

// dist/ is CommonJS, and package.json says so ("type": "commonjs") rather
// than leave it to Node's default for a package without "type": a Node run
// with ES modules as its default (--experimental-default-type=module) read
// every dist/*.js as ESM, and failed on `exports`.

const FLAG = '--experimental-default-type'
const flagMissing = process.allowedNodeEnvironmentFlags.has(FLAG) ? undefined : `this Node has no ${FLAG}`

// Through env(1), which drops the NODE_OPTIONS tap puts back into every child's environment:
// its --import hook cannot run where ES modules are the default.
function node (args: string[]): { status: number | null, stdout: string, stderr: string } {
  return spawnSync('env', ['-u', 'NODE_OPTIONS', process.execPath, `${FLAG}=module`, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 })
}

t.test('package.json names its module type', async t => {
  t.equal((JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { type?: string }).type, 'commonjs')
})

t.test('where ES modules are the default, the package still loads as CommonJS', { skip: flagMissing ?? buildProblem(t) ?? false }, async t => {
  const seen = node(['-e', `
    Promise.all(['fastify-rendezvous', 'fastify-rendezvous/agent', 'fastify-rendezvous/client'].map(name => import(name)))
      .then(([main, agent, client]) => console.log(typeof main.default, typeof agent.RendezvousAgent, typeof client.rendezvousFetch))`])
  t.equal(seen.stderr, '')
  t.equal(seen.stdout, 'function function function\n')
  const cli = node([CLI_MAIN, '--version'])
  t.equal(cli.status, 0, cli.stderr)
  t.equal(cli.stdout.trim(), (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version)
})
