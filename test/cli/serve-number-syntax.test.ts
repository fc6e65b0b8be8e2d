import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { envOf, flagOf, type AnyOption } from '../../lib/cli/config'
import { SERVE_TABLE } from '../../lib/cli/serve-table'
import { buildProblem, runCli } from '../helpers/cli'
import { refusal, resolveServe as resolve } from '../helpers/cli-refusal'

/*
 * One number syntax for every option: decimal digits, with a fraction where
 * seconds take one. The durations were read with Number(), which also takes
 * hex, exponents, Infinity, a leading + and spaces, while the counts refused
 * them.
 */

const NUMERIC = (SERVE_TABLE as readonly AnyOption[]).filter(spec => ['SECONDS', 'N', 'BYTES', 'BITS', 'PORT'].includes(spec.value ?? ''))
// Each is a number the option would take, written in some way other than decimal digits.
const NOT_DIGITS = ['0x10', '1e3', '1E1', 'Infinity', '+5', ' 5', '5 ', '5\n', '1_000', '0b1', '.5', '5.']

t.test('every numeric option refuses what is not decimal digits, from a flag, a variable or a string in the file', async t => {
  t.ok(NUMERIC.length > 30, `${NUMERIC.length} numeric options`)
  const dir = t.testdir()
  for (const spec of NUMERIC) {
    const flag = `--${flagOf(spec.key)}`
    for (const bad of NOT_DIGITS) {
      const got = `got ${JSON.stringify(bad)}`
      const fromFlag = refusal(() => resolve([`${flag}=${bad}`]))
      t.match(fromFlag, new RegExp(`^${flag} must be `), `${flag} ${JSON.stringify(bad)}`)
      t.ok(fromFlag.endsWith(got), fromFlag)
      t.match(refusal(() => resolve([], { [envOf(spec.key)]: bad })), new RegExp(`^${envOf(spec.key)} must be `), `${envOf(spec.key)}=${JSON.stringify(bad)}`)
      const file = join(dir, 'serve.json')
      writeFileSync(file, JSON.stringify({ [spec.key]: bad }))
      t.ok(refusal(() => resolve(['--config', file])).startsWith(`${spec.key} in ${file} must be `), `"${spec.key}": ${JSON.stringify(bad)}`)
    }
  }
})

t.test('a duration\'s message says how it is written, which a value above 0 in the wrong syntax needs', async t => {
  t.equal(refusal(() => resolve(['--wait-timeout', '1e3'])), '--wait-timeout must be a number of seconds above 0 and at most 86400, in decimal digits such as 30 or 2.5, got "1e3"')
  t.equal(refusal(() => resolve([], { RENDEZVOUS_LINGER_TIMEOUT: '0x10' })), 'RENDEZVOUS_LINGER_TIMEOUT must be a number of seconds from 0 to 86400, in decimal digits such as 30 or 2.5, got "0x10"')
  t.equal(refusal(() => resolve(['--max-parked', ' 5'])), '--max-parked must be an integer from 1 to 10000000, got " 5"')
})

t.test('decimal digits are taken, a fraction where seconds take one', async t => {
  const c = resolve(['--wait-timeout', '2.5', '--linger-timeout', '0', '--max-parked', '007', '--admin-rotate-overlap', '0.25'])
  t.equal(c.waitTimeout, 2500)
  t.equal(c.lingerTimeout, 0)
  t.equal(c.maxParked, 7)
  t.equal(c.adminRotateOverlap, 250)
  t.match(refusal(() => resolve(['--max-parked', '2.5'])), /^--max-parked must be an integer from 1 to 10000000, got "2\.5"$/, 'no fraction for a count')
  t.match(refusal(() => resolve(['--retry-after', '1.5'])), /^--retry-after must be an integer from 0 to 86400/, 'nor for whole seconds')
})

t.test('a JSON number in the config file is the number it is, however it is written', async t => {
  const file = join(t.testdir(), 'serve.json')
  writeFileSync(file, '{"waitTimeout": 1e3, "lingerTimeout": 2.5e-1, "maxParked": 1E3, "retryAfter": 5.0, "spliceIdleTimeout": 1e-7}')
  const c = resolve(['--config', file])
  t.equal(c.waitTimeout, 1_000_000)
  t.equal(c.lingerTimeout, 250)
  t.equal(c.maxParked, 1000)
  t.equal(c.retryAfter, 5)
  // 1e-7 s is above 0: at least 1 ms, never the 0 that means "never close an idle pair".
  t.equal(c.spliceIdleTimeout, 1)
  writeFileSync(file, '{"maxParked": 1e21}')
  t.equal(refusal(() => resolve(['--config', file])), `maxParked in ${file} must be an integer from 1 to 10000000, got "1e+21"`)
  writeFileSync(file, '{"waitTimeout": -5}')
  t.match(refusal(() => resolve(['--config', file])), /^waitTimeout in .* must be a number of seconds above 0 .*, got "-5"$/)
})

t.test('serve --wait-timeout 0x10 exits 2 with one line', async t => {
  const problem = buildProblem(t)
  if (problem !== undefined) return t.fail(problem)
  const res = await runCli(t, ['serve', '--no-tls', '--port', '0', '--data-dir', t.testdir(), '--wait-timeout', '0x10'], { timeoutMs: 5000 })
  t.equal(res.code, 2, res.stderr)
  t.equal(res.stderr, 'rendezvous: --wait-timeout must be a number of seconds above 0 and at most 86400, in decimal digits such as 30 or 2.5, got "0x10"\n')
})
