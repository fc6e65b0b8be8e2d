import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { generateSecret } from '../../lib/registry/ids'
import { provision, untilParked } from './paths'
import { rss, sleep, startScript, startServe, stop, type Script } from './procs'

// Scenarios 4 and 5: many connections held at once, each on a fresh relay so nothing else is in its memory.

const PER_ID = 50

export interface MemoryResult {
  connections: number
  /** RSS per connection, relay and bare. */
  relayBytesPerConnection: number
  bareBytesPerConnection: number
  /** What the relay adds per parked connection over a bare Node socket of the same kind, in RSS. */
  overheadBytes: number
  /** The same in live V8 heap after a full GC: what each connection really keeps, without heap V8 reserved and left free. */
  relayHeapPerConnection: number
  bareHeapPerConnection: number
  heapOverheadBytes: number
}

interface Memory { rss: number, heap: number }

// RSS and live V8 heap after a full GC (the child preloads gc-on-signal.js), the smallest of a few samples: the least noisy.
async function settledMemory (pid: number): Promise<Memory> {
  const least = { rss: Infinity, heap: Infinity }
  for (let i = 0; i < 4; i++) {
    process.kill(pid, 'SIGUSR2')
    await sleep(400)
    // The first collections still free start-up garbage; only the later ones count.
    if (i < 2) continue
    least.rss = Math.min(least.rss, rss(pid))
    const file = join(process.env.BENCH_HEAP_DIR ?? '', `${pid}.json`)
    if (existsSync(file)) least.heap = Math.min(least.heap, (JSON.parse(readFileSync(file, 'utf8')) as { used: number }).used)
  }
  return least
}

const slope = (a: Memory, b: Memory, n: number): Memory => ({ rss: (b.rss - a.rss) / n, heap: (b.heap - a.heap) / n })

async function freshRelay (dir: string, dist: string, kind: 'plain' | 'tls', ids: string[], secret: string, tls: { cert: string, key: string }) {
  const dataDir = join(dir, `held-${kind}-${Date.now()}`)
  await provision(dataDir, ids, secret)
  // Every connection here comes from 127.0.0.1; in production they come from as many addresses as there are hidden servers and clients.
  const args = ['--data-dir', dataDir, '--max-connections-per-address', '0', ...(kind === 'tls' ? ['--tls-cert', tls.cert, '--tls-key', tls.key] : ['--no-tls'])]
  return await startServe(dist, args, `${dataDir}.log`)
}

/**
 * Scenario 4: RSS per parked connection, against as many bare Node sockets
 * of the same kind. Measured as the slope between half and all of them, so
 * that what a process allocates once (young-generation space, pools) does
 * not count as per-connection cost.
 */
export async function parkedMemory (dir: string, dist: string, kind: 'plain' | 'tls', connections: number, tls: { cert: string, key: string }): Promise<MemoryResult> {
  const secret = generateSecret()
  const ids = Array.from({ length: Math.ceil(connections / PER_ID) }, (_, i) => `mem-${i}`)
  const half = ids.length * PER_ID / 2
  const relay = await freshRelay(dir, dist, kind, ids, secret, tls)
  const url = `${kind === 'tls' ? 'https' : 'http'}://127.0.0.1:${relay.port}`
  const parkers: Script[] = []
  let relayPer: Memory = { rss: NaN, heap: NaN }
  try {
    const samples: Memory[] = []
    for (let step = 1; step <= 2; step++) {
      parkers.push(await startScript('hidden.ts', [JSON.stringify({ relay: url, ids, secret, pool: PER_ID / 2, dialing: 100 })]))
      await untilParked(relay.port, kind === 'tls', step * half, 180_000)
      samples.push(await settledMemory(relay.child.pid as number))
    }
    relayPer = slope(samples[0], samples[1], half)
  } finally {
    for (const p of parkers) await stop(p.child)
    await stop(relay.child)
  }
  const holder = await startScript('holder.ts', ['server', kind, tls.cert, tls.key])
  const clients: Script[] = []
  let barePer: Memory = { rss: NaN, heap: NaN }
  try {
    const samples: Memory[] = []
    for (let step = 1; step <= 2; step++) {
      // It reports once all its connections are open: thousands of TLS handshakes on a busy machine take minutes.
      clients.push(await startScript('holder.ts', ['client', kind, String(holder.info.port), String(half)], 600_000))
      samples.push(await settledMemory(holder.child.pid as number))
    }
    barePer = slope(samples[0], samples[1], half)
  } finally {
    for (const c of clients) await stop(c.child)
    await stop(holder.child)
  }
  return {
    connections: 2 * half,
    relayBytesPerConnection: Math.round(relayPer.rss),
    bareBytesPerConnection: Math.round(barePer.rss),
    overheadBytes: Math.round(relayPer.rss - barePer.rss),
    relayHeapPerConnection: Math.round(relayPer.heap),
    bareHeapPerConnection: Math.round(barePer.heap),
    heapOverheadBytes: Math.round(relayPer.heap - barePer.heap)
  }
}

export interface ScaleResult {
  parked: number
  spliced: number
  /** Sockets the relay held at once: parked ones plus two per spliced pair. */
  held: number
  activeConnections: number
  rps: number
  p50: number
  p99: number
  errors: number
  /** RSS the relay added per spliced pair (both sockets), in bytes. */
  bytesPerSplice: number
}

/** Scenario 5: `pairs` spliced pairs and as many parked connections held at once, traffic on `active` of the pairs. */
export async function scale (dir: string, dist: string, pairs: number, active: number, seconds: number, tls: { cert: string, key: string }): Promise<ScaleResult> {
  const secret = generateSecret()
  const ids = Array.from({ length: Math.ceil(pairs / PER_ID) }, (_, i) => `scale-${i}`)
  const parked = ids.length * PER_ID
  const relay = await freshRelay(dir, dist, 'plain', ids, secret, tls)
  const hidden = await startScript('hidden.ts', [JSON.stringify({ relay: `http://127.0.0.1:${relay.port}`, ids, secret, pool: PER_ID, dialing: 100 })])
  let mobile: Script | undefined
  try {
    await untilParked(relay.port, false, parked, 180_000)
    const before = (await settledMemory(relay.child.pid as number)).rss
    mobile = await startScript('mobile.ts', [String(relay.port), ids.join(','), String(pairs), String(active), String(seconds)], 600_000)
    const held = mobile.info as { held: number, errors: number }
    // Every pair took a parked connection; the hidden server parks a new one for each.
    await untilParked(relay.port, false, parked, 180_000)
    const bytesPerSplice = ((await settledMemory(relay.child.pid as number)).rss - before) / Math.max(1, held.held)
    mobile.child.kill('SIGUSR2')
    const traffic = await mobile.next(seconds * 1000 + 60_000) as { rps: number, p50: number, p99: number, errors: number, alive: number }
    return {
      parked,
      spliced: held.held,
      held: parked + 2 * held.held,
      activeConnections: Math.min(active, held.held),
      rps: Math.round(traffic.rps),
      p50: traffic.p50,
      p99: traffic.p99,
      errors: held.errors + traffic.errors + (held.held - traffic.alive),
      bytesPerSplice: Math.round(bytesPerSplice)
    }
  } finally {
    await stop(mobile?.child)
    await stop(hidden.child)
    await stop(relay.child)
  }
}
