import type { MemoryResult, ScaleResult } from './held'
import type { RateResult } from './load'
import type { BenchPath } from './paths'

export interface Best<T> { best: T, rounds: number[] }

/** One bulk transfer: MB/s, and the CPU the processes in between spent per GiB moved. */
export interface BulkResult { mbps: number, cpuMsPerGiB?: number }

export interface Results {
  meta: { date: string, node: string, cpus: string, quick: boolean, rounds: number, seconds: Record<string, number>, bulkBytes: number, skipped: string[], durationSeconds: number }
  paths: Array<Pick<BenchPath, 'name' | 'group' | 'label'>>
  keepAlive: Record<string, Best<RateResult>>
  fresh: Record<string, Best<RateResult>>
  bulkDown: Record<string, Best<BulkResult>>
  bulkUp: Record<string, Best<BulkResult>>
  memory: Partial<Record<'plain' | 'tls', MemoryResult>>
  scale?: ScaleResult
}

const DIRECT: Record<BenchPath['group'], string> = { 'one hop': 'direct', tls: 'direct-tls', 'two hops': 'direct' }
const PEER: Record<string, string> = { relay: 'nginx', 'relay-js': 'nginx', pipe: 'nginx', floor: 'nginx', 'floor-http': 'nginx', 'relay-tls': 'nginx-tls', 'pipe-tls': 'nginx-tls', agent: 'ssh', 'agent-tls': 'ssh' }

type Scenario = 'keepAlive' | 'fresh' | 'bulkDown' | 'bulkUp'
const SCENARIOS: Array<{ key: Scenario, title: string, unit: string, cpu: string }> = [
  { key: 'keepAlive', title: '1. Keep-alive requests, 50 connections, 120-byte answers', unit: 'req/s', cpu: 'CPU µs/req in between' },
  { key: 'fresh', title: '2. A new connection (a new rendezvous) per request', unit: 'req/s', cpu: 'CPU µs/req in between' },
  { key: 'bulkDown', title: '3. Bulk download through one connection', unit: 'MB/s', cpu: 'CPU ms/GiB in between' },
  { key: 'bulkUp', title: '3. Bulk upload through one connection', unit: 'MB/s', cpu: 'CPU ms/GiB in between' }
]

function value (r: Results, scenario: Scenario, path: string): number | undefined {
  const entry = (r[scenario] as Record<string, Best<RateResult | BulkResult>>)[path]
  if (entry === undefined) return undefined
  return 'rps' in entry.best ? entry.best.rps : entry.best.mbps
}

/** Ratio of path to other in one scenario, or undefined when either was not measured. */
export function ratio (r: Results, scenario: Scenario, path: string, other: string): number | undefined {
  const a = value(r, scenario, path)
  const b = value(r, scenario, other)
  return a === undefined || b === undefined || b === 0 ? undefined : a / b
}

/**
 * The same ratio round by round: each round runs every path once, so these
 * are the fairest pairs on a machine whose speed drifts; one lucky round of
 * either path cannot decide them the way it decides a best-of-rounds ratio.
 */
export function roundRatios (r: Results, scenario: Scenario, path: string, other: string): number[] {
  const a = (r[scenario] as Record<string, Best<unknown>>)[path]?.rounds ?? []
  const b = (r[scenario] as Record<string, Best<unknown>>)[other]?.rounds ?? []
  return a.slice(0, b.length).map((v, i) => v / b[i]).filter(n => Number.isFinite(n))
}

const x = (n: number | undefined): string => n === undefined || !Number.isFinite(n) ? '–' : `${n.toFixed(2)}x`
const num = (n: number): string => Math.round(n).toLocaleString('en-US')
// Math.round: a few bytes below the bare socket read "0.0 KiB", not "-0.0 KiB".
const kib = (n: number): string => Number.isFinite(n) ? `${(Math.round(n / 102.4) / 10 + 0).toFixed(1)} KiB` : '–'

export function markdown (r: Results): string {
  const out: string[] = []
  out.push(`Measured ${r.meta.date} on ${r.meta.cpus}, Node ${r.meta.node}${r.meta.quick ? ' (quick mode: short runs, small sizes; indicative only)' : ''}. ` +
    `Best of ${r.meta.rounds} round(s), every path interleaved with the others in each round; loopback; ratios are within this run.`)
  if (r.meta.skipped.length > 0) out.push('', `Skipped: ${r.meta.skipped.join('; ')}.`)
  for (const s of SCENARIOS) {
    out.push('', `### ${s.title}`, '', `| path | ${s.unit} | p50 ms | p99 ms | errors | vs direct | vs peer | ${s.cpu} |`, '|---|---:|---:|---:|---:|---:|---:|---:|')
    for (const p of r.paths) {
      const entry = (r[s.key] as Record<string, Best<RateResult | BulkResult>>)[p.name]
      if (entry === undefined) continue
      const rate = 'rps' in entry.best ? entry.best : undefined
      const cpu = 'rps' in entry.best ? entry.best.cpuUs : entry.best.cpuMsPerGiB
      const peer = PEER[p.name]
      out.push(`| ${p.name} (${p.label}) | ${num(value(r, s.key, p.name) ?? NaN)} | ${rate?.p50 ?? ''} | ${rate?.p99 ?? ''} | ${rate?.errors ?? ''} | ` +
        `${p.name === DIRECT[p.group] ? '1.00x' : x(ratio(r, s.key, p.name, DIRECT[p.group]))} | ${peer === undefined ? '' : `${x(ratio(r, s.key, p.name, peer))} ${peer}`} | ${cpu === undefined ? '' : num(cpu)} |`)
    }
  }
  out.push('', '### 4. Memory per parked connection', '', '| kind | connections | relay RSS, per connection | bare Node socket | relay adds (RSS) | relay adds (live heap) |', '|---|---:|---:|---:|---:|---:|')
  for (const kind of ['plain', 'tls'] as const) {
    const m = r.memory[kind]
    if (m !== undefined) out.push(`| ${kind} | ${num(m.connections)} | ${kib(m.relayBytesPerConnection)} | ${kib(m.bareBytesPerConnection)} | ${kib(m.overheadBytes)} | ${kib(m.heapOverheadBytes)} |`)
  }
  if (r.scale !== undefined) {
    const s = r.scale
    out.push('', '### 5. Scale', '', `${num(s.held)} sockets held by the relay at once (${num(s.parked)} parked, ${num(s.spliced)} spliced pairs), ` +
      `traffic on ${num(s.activeConnections)} of the pairs: ${num(s.rps)} req/s, p50 ${s.p50} ms, p99 ${s.p99} ms, **${s.errors} errors**. ` +
      `RSS per spliced pair: ${kib(s.bytesPerSplice)}.`)
  }
  out.push('', '### Targets', '', 'Measured as the targets are set: the best round of one path against the best round of the other. ' +
    'Next to it, the same ratio within each round, where both paths ran minutes apart, and what a bare Node relay ' +
    'of the same kind reached against the same peer (for two hops, one bare TLS hop, which a two-hop path cannot beat).', '',
  '| target | measured (best of rounds) | met | round by round | bare Node, same run |', '|---|---:|:-:|---|---|')
  for (const t of targets(r)) out.push(`| ${t.what} | ${t.measured} | ${t.met === undefined ? '–' : t.met ? 'yes' : 'no'} | ${t.rounds ?? ''} | ${t.floor ?? ''} |`)
  return out.join('\n') + '\n'
}

export interface TargetRow { what: string, measured: string, met?: boolean, rounds?: string, floor?: string }

/**
 * Each target, and beside each rate target what the bare Node relay of the
 * same kind reached against the same peer in the same run (pipe, pipe-tls,
 * floor, and floor-http, the floor behind node:http's parser): where that is short of the goal too, no relay written in Node
 * reaches it on this machine, and the gap is Node's, not the relay's.
 */
export function targets (r: Results): TargetRow[] {
  const at = (n: number | undefined, goal: number, rounds?: number[]): Omit<TargetRow, 'what'> =>
    ({ measured: x(n), met: n === undefined ? undefined : n >= goal, rounds: rounds === undefined || rounds.length === 0 ? undefined : rounds.map(x).join(', ') })
  const vs = (s: Scenario, a: string, b: string, goal: number, ...bare: string[]): Omit<TargetRow, 'what'> => {
    const floors = bare.flatMap(name => { const n = ratio(r, s, name, b); return n === undefined ? [] : [`${x(n)} ${name}`] })
    return { ...at(ratio(r, s, a, b), goal, roundRatios(r, s, a, b)), ...(floors.length === 0 ? {} : { floor: floors.join(', ') }) }
  }
  const mem = (kind: 'plain' | 'tls'): { measured: string, met?: boolean } => {
    const m = r.memory[kind]
    return m === undefined ? { measured: '–' } : { measured: kib(m.overheadBytes), met: m.overheadBytes <= 1024 }
  }
  return [
    { what: 'keep-alive, one hop: ≥ 1.0x nginx stream', ...vs('keepAlive', 'relay', 'nginx', 1, 'pipe') },
    { what: 'keep-alive, TLS: ≥ 1.0x nginx stream with TLS', ...vs('keepAlive', 'relay-tls', 'nginx-tls', 1, 'pipe-tls') },
    { what: 'keep-alive, two hops (agent over TLS): ≥ 2x ssh -R', ...vs('keepAlive', 'agent-tls', 'ssh', 2, 'pipe-tls') },
    { what: 'bulk download: ≥ 1.0x nginx stream', ...vs('bulkDown', 'relay', 'nginx', 1, 'pipe') },
    { what: 'bulk upload: ≥ 1.0x nginx stream', ...vs('bulkUp', 'relay', 'nginx', 1, 'pipe') },
    { what: 'new rendezvous per request, plain: ≥ 0.5x direct', ...vs('fresh', 'relay', 'direct', 0.5, 'floor', 'floor-http') },
    { what: 'parked connection, plain: ≤ 1 KiB over a bare socket', ...mem('plain') },
    { what: 'parked connection, TLS: ≤ 1 KiB over a bare socket', ...mem('tls') },
    { what: 'scale: no errors', measured: r.scale === undefined ? '–' : `${r.scale.errors} errors`, met: r.scale === undefined ? undefined : r.scale.errors === 0 }
  ]
}

/** A bar chart of every path's ratio to direct, per scenario, as a standalone SVG. */
export function svg (r: Results): string {
  const rowH = 18
  const left = 250
  const width = 760
  const scaleW = width - left - 70
  const parts: string[] = []
  let y = 40
  for (const s of SCENARIOS) {
    const rows = r.paths.filter(p => value(r, s.key, p.name) !== undefined && p.name !== DIRECT[p.group])
    if (rows.length === 0) continue
    parts.push(`<text x="10" y="${y}" font-weight="bold">${esc(s.title)} (ratio to direct)</text>`)
    y += 8
    for (const p of rows) {
      const v = ratio(r, s.key, p.name, DIRECT[p.group]) ?? 0
      const w = Math.max(1, Math.min(v, 1.5) / 1.5 * scaleW)
      const ours = p.name.startsWith('relay') || p.name.startsWith('agent')
      parts.push(`<text x="${left - 6}" y="${y + 13}" text-anchor="end">${esc(p.name)}</text>`,
        `<rect x="${left}" y="${y + 2}" width="${w.toFixed(1)}" height="${rowH - 5}" fill="${ours ? '#2b6cb0' : '#a0aec0'}"/>`,
        `<text x="${(left + w + 5).toFixed(1)}" y="${y + 13}">${v.toFixed(2)}x</text>`)
      y += rowH
    }
    y += 22
  }
  const oneX = left + scaleW / 1.5
  parts.push(`<line x1="${oneX}" y1="30" x2="${oneX}" y2="${y - 20}" stroke="#e53e3e" stroke-dasharray="4 3"/>`,
    `<text x="${oneX + 4}" y="${y - 6}" fill="#e53e3e">1.0x = direct</text>`)
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y + 10}" font-family="sans-serif" font-size="12">\n` +
    `<rect width="100%" height="100%" fill="white"/>\n<text x="10" y="18" font-size="14">fastify-rendezvous benchmarks, ${esc(r.meta.date)}${r.meta.quick ? ' (quick)' : ''}</text>\n` +
    parts.join('\n') + '\n</svg>\n'
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

const START = '<!-- bench:results:start (written by npm run bench) -->'
const END = '<!-- bench:results:end -->'

/** Puts the generated table between its markers in the doc, keeping the prose around it. */
export function spliceIntoDoc (doc: string, table: string): string {
  const block = `${START}\n${table}${END}`
  const a = doc.indexOf(START)
  const b = doc.indexOf(END)
  if (a === -1 || b === -1) return `${doc.trimEnd()}\n\n## Results\n\n${block}\n`
  return doc.slice(0, a) + block + doc.slice(b + END.length)
}
