import t from 'tap'
import { once } from 'node:events'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { poolThatFits, poolWarning } from '../../lib/agent/descriptors'
import { SECRET } from '../helpers/fixtures'
import { buildProblem, CLI_MAIN, spawnProc, type Proc } from '../helpers/cli'
import { startRendezvous, untilParked, type TestRendezvous } from '../helpers/rendezvous'
import { until } from '../helpers/until'
import { openWire } from '../helpers/wire'

/*
 * Each parked connection is a file descriptor, and a taken one needs a
 * second for the local service. An agent whose pool filled its open-file
 * limit had none left for that dial: every mobile client got a 502 that
 * blamed the local service. The pool is now capped to what the limit holds
 * (said once at start), and a dial that still finds no descriptor says so.
 */

type Test = Parameters<Parameters<typeof t.test>[0]>[0]

const ID = 'hub-1'
const ISO = String.raw`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z`

t.test('the rule: the pool and one descriptor per parked connection for its local service, plus 32, fit in the limit', async (t) => {
  t.same([poolThatFits(64), poolThatFits(1024), poolThatFits(33), poolThatFits(undefined)], [16, 496, 1, undefined])
  t.equal(poolWarning(16, 64), undefined, 'a pool that fits: nothing to say')
  t.equal(poolWarning(200, undefined), undefined, 'no limit known: nothing to say')
  t.equal(poolWarning(1024, 1024), '--pool 1024 does not fit the open-file limit of 1024: each parked connection takes a file descriptor, ' +
    'and one more for the local service once a client takes it, and the agent keeps 32 for itself, so it keeps 496 parked; ' +
    'lower --pool to 496, or raise the limit to 2080 (LimitNOFILE=, ulimit -n)')
})

async function backend (t: Test): Promise<number> {
  const server = http.createServer((req, res) => { res.setHeader('Connection', 'close'); res.end(`hello ${req.url}\n`) })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  return (server.address() as AddressInfo).port
}

/** One mobile client's request through the relay, on a connection of its own: all that came back before the close. */
async function get (port: number, path: string): Promise<string> {
  const wire = await openWire(port, false)
  wire.write(`GET ${path} HTTP/1.1\r\nHost: h\r\nConnection: close\r\nAuthorization: Basic ${Buffer.from(`${ID}:x`).toString('base64')}\r\n\r\n`)
  await wire.untilClosed(10_000)
  return wire.text
}

/** The built agent under `ulimit -n 64` (soft and hard: Node cannot raise it), `preload` required first when given. */
function agentUnder64 (t: Test, relay: TestRendezvous, to: number, pool: number, preload?: string): Proc {
  const node = preload === undefined ? [process.execPath, CLI_MAIN] : [process.execPath, '-r', preload, CLI_MAIN]
  return spawnProc(t, 'rendezvous agent', 'bash', ['-c', 'ulimit -n 64 && exec "$@"', 'bash', ...node,
    'agent', '--server', `http://127.0.0.1:${relay.port}`, '--id', ID, '--to', `http://127.0.0.1:${to}`, '--pool', String(pool)],
  { env: { RENDEZVOUS_SECRET: SECRET, NODE_OPTIONS: '' }, timeoutMs: 60_000, watchdog: false })
}

const problem = buildProblem(t)
const linux = process.platform === 'linux' ? false : 'Linux only: the limit is read from /proc/self/limits'
if (problem !== undefined) {
  t.fail(problem)
} else {
  t.test('--pool 200 under an open-file limit of 64: warned at start, 16 kept parked, and every request through them answered 200', { skip: linux }, async (t) => {
    const relay = await startRendezvous({ ids: [ID] })
    t.teardown(() => relay.close())
    const to = await backend(t)
    const agent = agentUnder64(t, relay, to, 200)
    await agent.waitFor(/ready for mobile clients/)
    t.match(agent.stderr(), new RegExp(`^${ISO} WARN --pool 200 does not fit the open-file limit of 64: .* so it keeps 16 parked; lower --pool to 16, or raise the limit to 432 \\(LimitNOFILE=, ulimit -n\\)$`, 'm'))
    t.equal(agent.stderr().match(/does not fit/g)?.length, 1, 'said once')
    await until(() => relay.app.rendezvous.stats().parked >= 16, 10_000, '16 parked')
    await new Promise(resolve => setTimeout(resolve, 500))
    t.equal(relay.app.rendezvous.stats().parked, 16, 'the pool stops at what fits, and does not creep past it')
    // Waves as wide as the pool: every parked connection taken at once, and each finds a descriptor for its local service.
    for (let wave = 0; wave < 3; wave++) {
      await until(() => relay.app.rendezvous.stats().parked >= 16, 10_000, 'the pool topped up again')
      const answers = await Promise.all(Array.from({ length: 16 }, async (_, i) => await get(relay.port, `/w${wave}/${i}`)))
      answers.forEach((text, i) => t.match(text, new RegExp(`^HTTP/1\\.1 200 OK\\r\\n[^]*\\r\\n\\r\\nhello /w${wave}/${i}\\n$`), `wave ${wave}, request ${i}`))
    }
    t.notMatch(agent.stderr(), /EMFILE|cannot park|answered 502/, 'no descriptor ran out')
  })

  t.test('a dial that finds no descriptor left: the log and the client hear that, not that the local service cannot be reached', { skip: linux }, async (t) => {
    const relay = await startRendezvous({ ids: [ID] })
    t.teardown(() => relay.close())
    const to = await backend(t)
    // Once told to, takes every descriptor left: the agent's next dial, to the local service or to park, finds none.
    const dir = t.testdir({
      'starve.cjs': `const fs = require('node:fs')
const held = []
process.on('SIGUSR2', () => {
  try { for (;;) held.push(fs.openSync('/dev/null', 'r')) } catch {}
  process.stdout.write('starved after ' + held.length + '\\n')
})
`
    })
    const agent = agentUnder64(t, relay, to, 2, join(dir, 'starve.cjs'))
    await agent.waitFor(/ready for mobile clients/)
    await untilParked(relay, 2, 10_000)
    agent.child.kill('SIGUSR2')
    await agent.waitFor(/starved after \d+/)
    const text = await get(relay.port, '/starved')
    t.match(text, /^HTTP\/1\.1 502 Bad Gateway\r\n[^]*\r\n\r\nThe hidden server is out of resources\.\n$/, 'a 502 that does not blame the local service')
    await agent.waitFor(/GET \/starved: answered 502/)
    t.match(agent.stderr(), new RegExp(`^${ISO} WARN GET /starved: answered 502, the agent has no file descriptor left \\(open-file limit 64\\): connect EMFILE`, 'm'))
    t.notMatch(agent.stderr(), /the local service cannot be reached/)
    // The taken connection is replaced: that dial finds none either, and says why.
    await agent.waitFor(/cannot park: /)
    t.match(agent.stderr(), new RegExp(`^${ISO} WARN cannot park: the agent has no file descriptor left \\(open-file limit 64\\): connect EMFILE`, 'm'))
    await until(() => /retrying in .*: the agent has no file descriptor left \(open-file limit 64\)/.test(agent.stdout()), 5000, 'the retry line names the cause too')
  })
}
