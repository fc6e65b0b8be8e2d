import t from 'tap'
import { Writable } from 'node:stream'
import { RendezvousAgent } from '../../lib/agent/agent'
import { parseAgentArgs, runAgent } from '../../lib/cli/agent'
import { buildProblem, servePlainWithId, startCli } from '../helpers/cli'
import { TEST_ID, TEST_SECRET } from '../agent/fake-rendezvous'

/*
 * The agent's flags in seconds: each becomes a timer, which Node fires after
 * 1 ms when set past 2^31 - 1 ms, and each is written in decimal digits, as
 * serve's are.
 */
const BASE = ['--server', 'https://127.0.0.1:1', '--id', TEST_ID, '--to', 'http://127.0.0.1:2']
const ENV = { RENDEZVOUS_SECRET: TEST_SECRET }

async function refusal (args: string[]): Promise<{ code: number, err: string }> {
  let err = ''
  const sink = (append: (s: string) => void): Writable => new Writable({ write (chunk, _enc, cb) { append(String(chunk)); cb() } })
  // An agent that did start (a value taken) is stopped, so that the test fails rather than hangs.
  const stop = new Promise<string>(resolve => setTimeout(() => resolve('stop'), 2000).unref())
  const code = await runAgent([...BASE, ...args], { stdout: sink(() => {}), stderr: sink((s) => { err += s }), env: ENV }, stop)
  return { code, err }
}

const TIMER = 'about 24.8 days, the longest timer Node keeps'
const DIGITS = 'in decimal digits such as 30 or 2.5'

t.test('a duration past the longest timer is refused, naming the flag, exit 2', async t => {
  for (const [flag, value, message] of [
    ['--max-age', '3000000', `--max-age must be a number of seconds from 1 to 2147483 (${TIMER}) or 0, ${DIGITS}, got "3000000"`],
    ['--max-age', '2147484', `--max-age must be a number of seconds from 1 to 2147483 (${TIMER}) or 0, ${DIGITS}, got "2147484"`],
    ['--to-timeout', '10000000', `--to-timeout must be a number of seconds above 0 and at most 2147483 (${TIMER}), ${DIGITS}, got "10000000"`],
    ['--backoff-max', '2147483.648', `--backoff-max must be a number of seconds above 0 and at most 2147483 (${TIMER}), ${DIGITS}, got "2147483.648"`]
  ]) {
    const { code, err } = await refusal([flag, value])
    t.equal(code, 2, `${flag} ${value}`)
    t.equal(err, `rendezvous: agent: ${message}\n`)
  }
  const at = parseAgentArgs([...BASE, '--max-age', '2147483', '--to-timeout', '2147483', '--backoff-max', '2147483'], ENV)?.options
  t.match(at, { maxAge: 2_147_483_000, toConnectTimeout: 2_147_483_000, backoffMax: 2_147_483_000 }, 'the limit itself, in ms')
  t.doesNotThrow(() => new RendezvousAgent(at!), 'and the library takes it')
})

t.test('--max-age is 0 or a second at least', async t => {
  for (const value of ['0.001', '0.5', '0.999']) {
    const { code, err } = await refusal(['--max-age', value])
    t.equal(code, 2, `--max-age ${value}`)
    t.equal(err, `rendezvous: agent: --max-age must be a number of seconds from 1 to 2147483 (${TIMER}) or 0, ${DIGITS}, got "${value}"\n`)
  }
  for (const [value, ms] of [['0', 0], ['1', 1000], ['1.5', 1500], ['300', 300_000]] as const) {
    t.equal(parseAgentArgs([...BASE, '--max-age', value], ENV)?.options.maxAge, ms, `--max-age ${value}`)
  }
})

t.test('numbers in decimal digits only: what Number() also reads is refused with the flag\'s message', async t => {
  for (const value of ['1e6', '1e3', '0x10', 'Infinity', '+5', ' 5', '5 ', '5s', '.5', '5.', '-1', '']) {
    for (const flag of ['--to-timeout', '--backoff-max', '--max-age']) {
      const { code, err } = await refusal([`${flag}=${value}`])
      t.equal(code, 2, `${flag} ${JSON.stringify(value)}`)
      t.match(err, new RegExp(`^rendezvous: agent: ${flag} must be a number of seconds .*, ${DIGITS}, got ${JSON.stringify(JSON.stringify(value)).slice(1, -1).replace(/[.+]/g, '\\$&')}\\n$`))
    }
    const { code, err } = await refusal([`--pool=${value}`])
    t.equal(code, 2, `--pool ${JSON.stringify(value)}`)
    t.equal(err, 'rendezvous: agent: --pool must be a whole number of at least 1\n')
  }
  t.match(parseAgentArgs([...BASE, '--to-timeout', '0.25', '--backoff-max', '2.5', '--pool', '8'], ENV)?.options, { toConnectTimeout: 250, backoffMax: 2500, pool: 8 })
  t.equal(parseAgentArgs([...BASE, '--to-timeout', '0.0001'], ENV)?.options.toConnectTimeout, 1, 'above 0 is never 0 ms')
})

t.test('a real agent given --max-age 3000000 exits 2 at once, and parks nothing', async t => {
  const problem = buildProblem(t)
  if (problem !== undefined) return t.fail(problem)
  const { secret, port } = await servePlainWithId(t, 'hub-age')
  const agent = startCli(t, ['agent', '--server', `http://127.0.0.1:${port}`, '--id', 'hub-age', '--to', 'http://127.0.0.1:9', '--pool', '2', '--max-age', '3000000'], { env: { RENDEZVOUS_SECRET: secret } })
  const exit = await Promise.race([agent.exited, new Promise<undefined>(resolve => setTimeout(() => resolve(undefined), 5000).unref())])
  t.same(exit, { code: 2, signal: null }, agent.output())
  t.match(agent.stderr(), /^rendezvous: agent: --max-age must be a number of seconds from 1 to 2147483 \(about 24\.8 days, the longest timer Node keeps\) or 0/)
  t.notMatch(agent.output(), /TimeoutOverflowWarning/)
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
  t.match(metrics, /^# TYPE rendezvous_connect_total counter$/m)
  t.notMatch(metrics, /^rendezvous_connect_total\{outcome="parked"[^}]*\} [1-9]/m, 'no CONNECT parked')
})
