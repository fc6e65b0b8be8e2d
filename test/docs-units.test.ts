import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { buildProblem, runCli } from './helpers/cli'

/*
 * The systemd units of the docs restart a command that failed, but not one
 * whose configuration is wrong: that exits 2 at once, and Restart=on-failure
 * alone would start it again every RestartSec, for ever, filling the journal.
 */

const ROOT = join(__dirname, '..')

/** Every fenced ini block of `file` that is a [Service] unit. */
function units (file: string): string[] {
  const text = readFileSync(join(ROOT, 'docs', file), 'utf8')
  return text.split(/^```[a-z]*\n/m).filter((part, i) => i % 2 === 1 && part.includes('\n[Service]\n'))
}

const directives = (unit: string, name: string): string[] =>
  [...unit.matchAll(new RegExp(`^${name}=(.*)$`, 'gm'))].map(m => m[1]!.trim())

for (const file of ['operations.md', 'agent.md']) {
  t.test(`${file}: a unit that restarts on failure does not restart a configuration error (exit 2)`, async t => {
    const found = units(file)
    t.ok(found.length > 0, 'the doc has a unit')
    for (const unit of found) {
      const exec = directives(unit, 'ExecStart')[0] ?? ''
      t.same(directives(unit, 'Restart'), ['on-failure'], exec)
      t.ok(directives(unit, 'RestartPreventExitStatus').some(v => v.split(/\s+/).includes('2')), `RestartPreventExitStatus lists 2: ${exec}`)
    }
  })
}

t.test('serve exits 2 on a bad option, from a flag or from the environment a unit sets', { skip: buildProblem(t) ?? false }, async t => {
  for (const [args, env] of [[['serve', '--max-parked', '0'], {}], [['serve'], { RENDEZVOUS_CONFIG: join(ROOT, 'no-such-serve.json') }]] as const) {
    const res = await runCli(t, [...args], { env, timeoutMs: 5000 })
    t.equal(res.code, 2, `${args.join(' ')}: ${res.stderr}`)
  }
})
