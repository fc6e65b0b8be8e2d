/*
 * Two builds of the relay side by side on scenario 2 (a new rendezvous per
 * request), for a change's before and after:
 *
 *   npx tsx bench/ab.ts --base OLD/dist [--dist dist] [--rate 800] [--rounds 5] [--seconds 5]
 *   npx tsx bench/ab.ts --base dist --base-env RENDEZVOUS_SPLICE=js   # one build, two settings
 *
 * Each build runs as `serve --no-tls` with its own hidden server parking to
 * it, and the two are measured in turns, round after round. Two measures:
 * at saturation (50 loops, as in npm run bench), and at a fixed rate well
 * below what either build reaches (open loop). The CPU the relay spends per
 * rendezvous at a fixed rate moves by a few percent between rounds where at
 * saturation it moves by a third, so a change of a tenth shows there first.
 * `--base` needs a build whose native/build sits two levels up, as in a
 * checkout (git worktree add /tmp/old REV && cd /tmp/old && npm ci && npm run build).
 */
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { freshConnections, pacedConnections, type Target } from './lib/load'
import { HIDDEN_ID, provision, startHidden } from './lib/paths'
import { cpuMs, ROOT, sleep, startServe, stop } from './lib/procs'
import { generateSecret } from '../lib/registry/ids'

const { values } = parseArgs({
  options: {
    base: { type: 'string' },
    'base-env': { type: 'string', multiple: true, default: [] },
    'dist-env': { type: 'string', multiple: true, default: [] },
    dist: { type: 'string', default: join(ROOT, 'dist') },
    rate: { type: 'string', default: '800' },
    rounds: { type: 'string', default: '5' },
    seconds: { type: 'string', default: '5' }
  }
})
if (values.base === undefined) throw new Error('--base DIR: the build to compare with')
const RATE = Number(values.rate)
const ROUNDS = Number(values.rounds)
const SECONDS = Number(values.seconds)

interface Build { name: string, target: Target, pid: number, saturated: Array<{ rps: number, cpuUs: number }>, paced: number[] }

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN

async function main (): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'rendezvous-ab-'))
  const secret = generateSecret()
  const children: ChildProcess[] = []
  const builds: Build[] = []
  try {
    for (const [name, dist, vars] of [['base', resolve(values.base as string), values['base-env']], ['dist', resolve(values.dist), values['dist-env']]] as const) {
      const dataDir = join(dir, name)
      await provision(dataDir, [HIDDEN_ID], secret)
      const env = { ...process.env, ...Object.fromEntries(vars.map(v => [v.slice(0, v.indexOf('=')), v.slice(v.indexOf('=') + 1)])) }
      const serve = await startServe(dist, ['--data-dir', dataDir, '--no-tls', '--max-connections-per-address', '4096'], join(dir, `${name}.log`), env)
      children.push(serve.child)
      const url = `http://127.0.0.1:${serve.port}`
      children.push((await startHidden(url, secret)).child)
      builds.push({ name: `${name} (${[dist, ...vars].join(' ')})`, target: { port: serve.port, tls: false, id: HIDDEN_ID }, pid: serve.child.pid as number, saturated: [], paced: [] })
    }
    await sleep(2000)
    // Warm both: the relay's code is cold until a few thousand rendezvous went through it.
    for (const b of builds) await freshConnections(b.target, 3, 50)
    for (let round = 0; round < ROUNDS; round++) {
      for (const b of round % 2 === 0 ? builds : [...builds].reverse()) {
        let before = cpuMs(b.pid)
        const r = await freshConnections(b.target, SECONDS, 50)
        b.saturated.push({ rps: r.rps, cpuUs: (cpuMs(b.pid) - before) * 1000 / (r.rps * SECONDS) })
        await sleep(500)
        before = cpuMs(b.pid)
        const p = await pacedConnections(b.target, SECONDS, RATE)
        if (p.errors > 0) process.stderr.write(`ab: ${b.name}: ${p.errors} errors at ${RATE}/s\n`)
        b.paced.push((cpuMs(b.pid) - before) * 1000 / p.done)
        await sleep(500)
        process.stderr.write(`ab: round ${round + 1} ${b.name}: ${Math.round(r.rps)} req/s, ${Math.round(b.saturated.at(-1)!.cpuUs)} µs CPU/req saturated; ${Math.round(b.paced.at(-1)!)} µs at ${RATE}/s\n`)
      }
    }
  } finally {
    await Promise.all(children.map(stop))
    rmSync(dir, { recursive: true, force: true })
  }
  const [base, dist] = builds as [Build, Build]
  const line = (b: Build): string => `${b.name}: saturated ${Math.round(median(b.saturated.map(s => s.rps)))} req/s, ${Math.round(median(b.saturated.map(s => s.cpuUs)))} µs CPU/req; at ${RATE}/s ${Math.round(median(b.paced))} µs CPU/req (rounds ${b.paced.map(Math.round).join(', ')})`
  console.log(line(base))
  console.log(line(dist))
  console.log(`dist / base, medians: ${(median(dist.paced) / median(base.paced)).toFixed(2)}x CPU per rendezvous at ${RATE}/s, ` +
    `${(median(dist.saturated.map(s => s.rps)) / median(base.saturated.map(s => s.rps))).toFixed(2)}x req/s saturated`)
}

main().then(() => process.exit(0), err => {
  process.stderr.write(`ab: failed: ${(err as Error).stack ?? String(err)}\n`)
  process.exit(1)
})
