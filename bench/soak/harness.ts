import { spawn, type ChildProcess } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import http from 'node:http'
import { connect, type Socket } from 'node:net'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { createV1Token } from '../../lib/tokens/v1'

/*
 * Soak: requests through a relay process while the hidden side's connections
 * are killed at random, parked or in the middle of a request, by FIN or RST.
 * Every request must end in an answer (200 from the hidden server), a
 * refusal (a status line from the relay) or a close that a kill explains;
 * none may hang. Afterwards the relay must hold no socket or descriptor more
 * than before, with heap and RSS flat after warm-up.
 */

const ID = 'soak-1'
const SECRET = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP'
const HANG_MS = 20_000

export interface SoakOptions {
  requests: number
  /** Clients in flight at once. */
  concurrency: number
  /** Hidden connections kept parked or connecting. */
  pool: number
  /** Share of hidden connections killed (half while parked, half on their request). */
  killRate: number
  log?: (line: string) => void
}

/** The relay after `done` requests: RSS, heap used after a full GC, open descriptors. The last one is taken after the load, with nothing parked. */
export interface Sample { done: number, rssMb: number, heapMb: number, fds: number }

export interface SoakReport {
  requests: number
  answered: number
  refused: Record<string, number>
  /** Closed without a status because the hidden connection was killed on the request. */
  closedByKill: number
  /** Closed without a status, not matched to a kill on the request: bounded by kills of parked connections the relay had just handed out. */
  closedUnmatched: number
  hung: number
  killedParked: number
  killedOnRequest: number
  connectsRefused: number
  fdsBefore: number
  fdsAfter: number
  samples: Sample[]
  seconds: number
}

function startRelay (): Promise<{ child: ChildProcess, port: number }> {
  const child = spawn(process.execPath, ['--expose-gc', '--import=tsx', join(__dirname, 'relay.ts'), ID, SECRET], {
    cwd: join(__dirname, '..', '..'),
    stdio: ['ignore', 'pipe', 'inherit']
  })
  return new Promise((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString()
      const m = /listening (\d+)/.exec(out)
      if (m !== null) resolve({ child, port: Number(m[1]) })
    })
    child.once('exit', code => reject(new Error(`relay exited ${String(code)}`)))
  })
}

function getText (port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, agent: false }, res => {
      let body = ''
      res.on('data', (c: Buffer) => { body += c.toString() })
      res.on('end', () => resolve(body))
    }).on('error', reject)
  })
}

async function sample (pid: number, port: number, done: number): Promise<Sample> {
  await getText(port, '/gc')
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0)
  const metrics = await getText(port, '/metrics')
  const heap = Number(/^rendezvous_nodejs_heap_size_used_bytes (\S+)/m.exec(metrics)?.[1] ?? 0)
  return { done, rssMb: round(rssKb / 1024), heapMb: round(heap / 2 ** 20), fds: fdCount(pid) }
}

const round = (n: number): number => Math.round(n * 10) / 10
const fdCount = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length

/** The hidden side: keeps `pool` connections parked, kills some at random, answers the rest. */
class HiddenPool {
  readonly killedOnRequest = new Set<number>()
  killedParked = 0
  connectsRefused = 0
  readonly #open = new Set<Socket>()
  #stopping = false

  readonly #port: number
  readonly #opts: SoakOptions

  constructor (port: number, opts: SoakOptions) {
    this.#port = port
    this.#opts = opts
  }

  start (): void {
    for (let i = 0; i < this.#opts.pool; i++) this.#one()
  }

  stop (): void {
    this.#stopping = true
    for (const s of this.#open) s.destroy()
  }

  #one (): void {
    const s = connect({ port: this.#port, host: '127.0.0.1' })
    this.#open.add(s)
    const fate = Math.random()
    const kill = (): void => { if (Math.random() < 0.5) s.resetAndDestroy(); else s.destroy() }
    let text = ''
    let parked = false
    s.on('error', () => {})
    s.on('close', () => {
      this.#open.delete(s)
      if (!this.#stopping) this.#one()
    })
    s.on('connect', () => s.write(`CONNECT uuid:${ID}?response=${createV1Token(ID, SECRET)} HTTP/1.1\r\nHost: soak\r\n\r\n`))
    s.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1')
      if (!parked) {
        if (!text.includes('\r\n\r\n')) return
        if (!text.startsWith('HTTP/1.1 200 ')) {
          this.connectsRefused++
          s.destroy()
          return
        }
        parked = true
        text = text.slice(text.indexOf('\r\n\r\n') + 4)
        if (fate < this.#opts.killRate / 2) {
          setTimeout(() => {
            if (text === '' && !s.destroyed) {
              this.killedParked++
              kill()
            }
          }, Math.random() * 30)
        }
      }
      const m = /^GET \/r\/(\d+) /.exec(text)
      if (m === null || !text.includes('\r\n\r\n')) return
      const n = Number(m[1])
      if (fate >= this.#opts.killRate / 2 && fate < this.#opts.killRate) {
        this.killedOnRequest.add(n)
        kill()
        return
      }
      const body = `ok ${n}`
      s.end(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`)
    })
  }
}

type Outcome = { kind: 'answered' } | { kind: 'refused', status: string } | { kind: 'closed' } | { kind: 'hung' }

function request (port: number, n: number): Promise<Outcome> {
  return new Promise(resolve => {
    const s = connect({ port, host: '127.0.0.1' })
    let text = ''
    const timer = setTimeout(() => { s.destroy(); resolve({ kind: 'hung' }) }, HANG_MS)
    s.on('error', () => {})
    s.on('connect', () => s.write(`GET /r/${n} HTTP/1.1\r\nHost: soak\r\nAuthorization: Digest username="${ID}"\r\n\r\n`))
    s.on('data', (c: Buffer) => { text += c.toString('latin1') })
    s.on('close', () => {
      clearTimeout(timer)
      const status = /^HTTP\/1\.1 (\d{3}) /.exec(text)?.[1]
      if (status === '200' && text.endsWith(`ok ${n}`)) resolve({ kind: 'answered' })
      else if (status !== undefined) resolve({ kind: 'refused', status })
      else resolve({ kind: 'closed' })
    })
  })
}

async function settle (port: number): Promise<void> {
  const deadline = Date.now() + 15_000
  for (;;) {
    const h = JSON.parse(await getText(port, '/healthz')) as { parked: number, waiting: number, spliced: number }
    if (h.parked === 0 && h.waiting === 0 && h.spliced === 0) return
    if (Date.now() > deadline) throw new Error(`relay did not settle: ${JSON.stringify(h)}`)
    await sleep(100)
  }
}

export async function runSoak (opts: SoakOptions): Promise<SoakReport> {
  const started = Date.now()
  const { child, port } = await startRelay()
  const pid = child.pid!
  try {
    await sleep(500)
    const fdsBefore = fdCount(pid)
    const pool = new HiddenPool(port, opts)
    pool.start()
    const report: SoakReport = {
      ...{ requests: opts.requests, answered: 0, refused: {}, closedByKill: 0, closedUnmatched: 0, hung: 0 },
      ...{ killedParked: 0, killedOnRequest: 0, connectsRefused: 0, fdsBefore, fdsAfter: 0, samples: [], seconds: 0 }
    }
    const every = Math.max(1, Math.floor(opts.requests / 20))
    let next = 0
    let done = 0
    const worker = async (): Promise<void> => {
      while (next < opts.requests) {
        const n = next++
        const outcome = await request(port, n)
        if (outcome.kind === 'answered') report.answered++
        else if (outcome.kind === 'refused') report.refused[outcome.status] = (report.refused[outcome.status] ?? 0) + 1
        else if (outcome.kind === 'hung') report.hung++
        else if (pool.killedOnRequest.has(n)) report.closedByKill++
        else report.closedUnmatched++
        if (++done % every === 0) {
          const s = await sample(pid, port, done)
          report.samples.push(s)
          opts.log?.(JSON.stringify(s))
        }
      }
    }
    await Promise.all(Array.from({ length: opts.concurrency }, worker))
    pool.stop()
    await settle(port)
    await sleep(500)
    report.fdsAfter = fdCount(pid)
    report.samples.push(await sample(pid, port, opts.requests))
    report.killedParked = pool.killedParked
    report.killedOnRequest = pool.killedOnRequest.size
    report.connectsRefused = pool.connectsRefused
    report.seconds = Math.round((Date.now() - started) / 1000)
    return report
  } finally {
    child.kill('SIGTERM')
  }
}

/** The soak's pass conditions, shared with the tap test that runs it small. */
export function checkSoak (r: SoakReport): string[] {
  const failures: string[] = []
  if (r.hung > 0) failures.push(`${r.hung} requests were neither answered, refused nor closed`)
  if (r.closedUnmatched > r.killedParked) failures.push(`${r.closedUnmatched} closes without a status, more than the ${r.killedParked} kills of parked connections`)
  if (r.fdsAfter > r.fdsBefore) failures.push(`${r.fdsAfter - r.fdsBefore} descriptors leaked (${r.fdsBefore} before, ${r.fdsAfter} after)`)
  // Flat after warm-up: the first fifth of the run warms up; after it, neither figure may grow by a quarter.
  const warm = r.samples[Math.floor(r.samples.length / 5)]
  for (const s of r.samples.slice(Math.floor(r.samples.length / 5))) {
    if (warm === undefined) break
    if (s.heapMb > warm.heapMb * 1.25 + 2) failures.push(`heap grew from ${warm.heapMb} MB to ${s.heapMb} MB at ${s.done} requests`)
    if (s.rssMb > warm.rssMb * 1.25 + 8) failures.push(`RSS grew from ${warm.rssMb} MB to ${s.rssMb} MB at ${s.done} requests`)
  }
  return failures
}
