import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { bulkDown, bulkUp } from './lib/bulk'
import { parkedMemory, scale } from './lib/held'
import { freshConnections, keepAlive, type RateResult } from './lib/load'
import { makeCertificate, startPaths, type BenchPath } from './lib/paths'
import { cpuMs, NOFILE, ROOT, sleep } from './lib/procs'
import { markdown, spliceIntoDoc, svg, targets, type Best, type BulkResult, type Results } from './lib/report'

/*
 * npm run bench [-- --quick] [-- --dist DIR] [-- --only keepAlive,fresh,...] [-- --paths relay,nginx,...]
 *
 * Starts every path itself on loopback, runs the scenarios in rounds with
 * the paths interleaved (their order rotates each round), keeps the best
 * round of each path, stops everything, and writes bench/results/latest.json,
 * the table in docs/benchmarks.md and docs/benchmarks.svg. --quick (CI) is
 * short and writes bench/results/quick.json only. It fails only when
 * something breaks, never on a ratio.
 */
const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    dist: { type: 'string', default: join(ROOT, 'dist') },
    only: { type: 'string' },
    // The paths scenarios 1 to 3 measure (all are still started): for comparing a few of them quickly.
    paths: { type: 'string' },
    rounds: { type: 'string' },
    out: { type: 'string' },
    // Re-renders the published table and chart from a results file, measuring nothing: for a change to the report itself.
    render: { type: 'string' }
  }
})
const quick = values.quick === true
const CONFIG = quick
  ? { rounds: 1, keepAlive: 2, fresh: 2, bulk: 64 * 1024 * 1024, parked: 1000, pairs: 500, active: 50, scaleSeconds: 3 }
  : { rounds: 3, keepAlive: 8, fresh: 5, bulk: 1024 * 1024 * 1024, parked: 10_000, pairs: Math.min(5000, Math.floor((NOFILE - 2000) / 3)), active: 200, scaleSeconds: 10 }
if (values.rounds !== undefined) CONFIG.rounds = Number(values.rounds)
const only = values.only?.split(',')
const wanted = (scenario: string): boolean => only === undefined || only.includes(scenario)
const pathNames = values.paths?.split(',')
// A run that measured some of the paths or scenarios is for trying things: it never replaces the published numbers.
const partial = only !== undefined || pathNames !== undefined
const FLOORS = new Set(['floor', 'floor-http'])
const FRESH_PATHS = new Set(['direct', 'relay', 'relay-js', 'floor', 'floor-http', 'nginx', 'direct-tls', 'relay-tls', 'nginx-tls'])
const BULK_PATHS = new Set(['direct', 'relay', 'relay-js', 'nginx', 'pipe'])

function log (line: string): void {
  process.stderr.write(`bench: ${line}\n`)
}

function keepBest<T> (into: Record<string, Best<T>>, path: string, result: T, score: (r: T) => number): void {
  const entry = into[path]
  if (entry === undefined) into[path] = { best: result, rounds: [score(result)] }
  else {
    entry.rounds.push(score(result))
    if (score(result) > score(entry.best)) entry.best = result
  }
}

// Each round starts at a different path, so no path always runs first or right after the heaviest one.
function rotate<T> (items: T[], by: number): T[] {
  const k = by % Math.max(1, items.length)
  return [...items.slice(k), ...items.slice(0, k)]
}

// CPU time of the processes between client and backend, in ms.
const cpuOf = (p: BenchPath): number => p.pids.reduce((sum, pid) => sum + cpuMs(pid), 0)

async function withCpu (p: BenchPath, run: () => Promise<RateResult>, seconds: number): Promise<RateResult> {
  const before = cpuOf(p)
  const r = await run()
  const requests = r.rps * seconds
  return p.pids.length === 0 || requests === 0 ? r : { ...r, cpuUs: Math.round((cpuOf(p) - before) * 1000 / requests) }
}

// CPU of the processes in between per GiB moved: on 2 cores the relay shares a core with an end, so its cost shows here before it shows in MB/s.
async function bulkWithCpu (p: BenchPath, run: () => Promise<number>): Promise<BulkResult> {
  const before = cpuOf(p)
  const mbps = Math.round(await run())
  return p.pids.length === 0 ? { mbps } : { mbps, cpuMsPerGiB: Math.round((cpuOf(p) - before) * (1024 ** 3) / CONFIG.bulk) }
}

async function rounds (paths: BenchPath[], results: Results): Promise<void> {
  const rps = (r: RateResult): number => r.errors > 0 ? r.rps * 0.999 : r.rps
  // The first seconds of a process run cold code; a short unrecorded run warms every path, client included.
  if (!quick) for (const p of paths) await keepAlive(p.target, 1, 50)
  for (let round = 0; round < CONFIG.rounds; round++) {
    const order = rotate(paths, round)
    if (wanted('keepAlive')) {
      // The floors are scenario 2's alone: they carry one request per connection.
      for (const p of order.filter(p => !FLOORS.has(p.name))) {
        const r = await withCpu(p, () => keepAlive(p.target, CONFIG.keepAlive, 50), CONFIG.keepAlive)
        log(`round ${round + 1} keep-alive ${p.name}: ${Math.round(r.rps)} req/s, p99 ${r.p99} ms, ${r.errors} errors, ${r.cpuUs ?? '-'} µs CPU/req`)
        keepBest(results.keepAlive, p.name, r, rps)
      }
    }
    if (wanted('fresh')) {
      for (const p of order.filter(p => FRESH_PATHS.has(p.name))) {
        const r = await withCpu(p, () => freshConnections(p.target, CONFIG.fresh, 50), CONFIG.fresh)
        const kinds = r.errorKinds === undefined ? '' : ` ${JSON.stringify(r.errorKinds)}`
        log(`round ${round + 1} new connection per request ${p.name}: ${Math.round(r.rps)} req/s, p99 ${r.p99} ms, ${r.errors} errors${kinds}, ${r.cpuUs ?? '-'} µs CPU/req`)
        keepBest(results.fresh, p.name, r, rps)
        // Closed connections linger in TIME_WAIT; let the next path start on a calm machine.
        await sleep(500)
      }
    }
    if (wanted('bulk')) {
      for (const p of order.filter(p => BULK_PATHS.has(p.name))) {
        const down = await bulkWithCpu(p, () => bulkDown(p.target, CONFIG.bulk))
        const up = await bulkWithCpu(p, () => bulkUp(p.target, CONFIG.bulk))
        log(`round ${round + 1} bulk ${p.name}: down ${down.mbps} MB/s, ${down.cpuMsPerGiB ?? '-'} ms CPU/GiB; up ${up.mbps} MB/s, ${up.cpuMsPerGiB ?? '-'} ms CPU/GiB`)
        keepBest(results.bulkDown, p.name, down, r => r.mbps)
        keepBest(results.bulkUp, p.name, up, r => r.mbps)
      }
    }
  }
}

async function main (): Promise<void> {
  const started = Date.now()
  if (!existsSync(join(values.dist as string, 'cli', 'main.js'))) throw new Error(`no build in ${values.dist}: run npm run build`)
  const dir = mkdtempSync(join(tmpdir(), 'rendezvous-bench-'))
  const tls = makeCertificate(dir)
  // Children inherit it: where gc-on-signal.js writes their live heap.
  process.env.BENCH_HEAP_DIR = dir
  const results: Results = {
    meta: {
      date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC',
      node: process.versions.node,
      cpus: `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'unknown CPU'}`,
      quick,
      rounds: CONFIG.rounds,
      seconds: { keepAlive: CONFIG.keepAlive, fresh: CONFIG.fresh, scale: CONFIG.scaleSeconds },
      bulkBytes: CONFIG.bulk,
      skipped: [],
      durationSeconds: 0
    },
    paths: [],
    keepAlive: {},
    fresh: {},
    bulkDown: {},
    bulkUp: {},
    memory: {}
  }
  try {
    if (wanted('keepAlive') || wanted('fresh') || wanted('bulk')) {
      const bench = await startPaths(dir, values.dist as string, tls)
      results.meta.skipped.push(...bench.skipped)
      for (const s of bench.skipped) log(`skipped ${s}`)
      const measured = bench.paths.filter(p => pathNames === undefined || pathNames.includes(p.name))
      const unknown = pathNames?.filter(name => !bench.paths.some(p => p.name === name)) ?? []
      if (unknown.length > 0) throw new Error(`no such path: ${unknown.join(', ')} (paths: ${bench.paths.map(p => p.name).join(', ')})`)
      results.paths = measured.map(({ name, group, label }) => ({ name, group, label }))
      try {
        await rounds(measured, results)
      } finally {
        await bench.stop()
      }
    }
    if (wanted('memory')) {
      for (const kind of ['plain', 'tls'] as const) {
        results.memory[kind] = await parkedMemory(dir, values.dist as string, kind, CONFIG.parked, tls)
        log(`memory ${kind}: ${JSON.stringify(results.memory[kind])}`)
      }
    }
    if (wanted('scale')) {
      results.scale = await scale(dir, values.dist as string, CONFIG.pairs, CONFIG.active, CONFIG.scaleSeconds, tls)
      log(`scale: ${JSON.stringify(results.scale)}`)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  results.meta.durationSeconds = Math.round((Date.now() - started) / 1000)
  write(results)
  for (const t of targets(results)) log(`target ${t.what}: ${t.measured}${t.met === undefined ? '' : t.met ? ' (met)' : ' (not met)'}${t.rounds === undefined ? '' : `; round by round ${t.rounds}`}`)
  log(`done in ${results.meta.durationSeconds} s`)
}

function write (results: Results): void {
  const resultsDir = join(ROOT, 'bench', 'results')
  mkdirSync(resultsDir, { recursive: true })
  const out = values.out ?? join(resultsDir, quick ? 'quick.json' : partial ? 'partial.json' : 'latest.json')
  writeFileSync(out, JSON.stringify(results, null, 2) + '\n')
  log(`wrote ${out}`)
  // Quick runs and partial runs are for CI and for trying things: they never overwrite the published numbers.
  if (quick || partial || values.out !== undefined) return
  publish(results)
}

/** The published table (between its markers in docs/benchmarks.md) and the chart. */
function publish (results: Results): void {
  const docFile = join(ROOT, 'docs', 'benchmarks.md')
  const doc = existsSync(docFile) ? readFileSync(docFile, 'utf8') : '# Benchmarks\n'
  writeFileSync(docFile, spliceIntoDoc(doc, markdown(results)))
  writeFileSync(join(ROOT, 'docs', 'benchmarks.svg'), svg(results))
  log('wrote docs/benchmarks.md and docs/benchmarks.svg')
}

;(values.render !== undefined ? Promise.resolve().then(() => publish(JSON.parse(readFileSync(values.render as string, 'utf8')) as Results)) : main()).then(() => process.exit(0), err => {
  process.stderr.write(`bench: failed: ${(err as Error).stack ?? String(err)}\n`)
  process.exit(1)
})
