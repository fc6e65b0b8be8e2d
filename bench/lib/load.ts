import net from 'node:net'
import tls from 'node:tls'
import autocannon from 'autocannon'

export interface Target { port: number, tls: boolean, id: string }

export interface RateResult {
  rps: number
  p50: number
  p99: number
  errors: number
  /** What the errors were (a status line, 'closed early', 'read ECONNRESET', 'timeout'), with their counts. */
  errorKinds?: Record<string, number>
  /** CPU time the processes between client and backend spent per request, in µs: steadier than req/s on a busy machine. */
  cpuUs?: number
}

/** A fixed Digest credential: the relay reads only the user name, and the other paths ignore it. */
export function digest (id: string): string {
  return `Digest username="${id}", realm="rendezvous", nonce="bench", uri="/", qop=auth, nc=00000001, cnonce="bench", response="00000000000000000000000000000000"`
}

/** Scenario 1: keep-alive requests through established connections, with autocannon. */
export async function keepAlive (target: Target, seconds: number, connections: number): Promise<RateResult> {
  const result = await autocannon({
    url: `${target.tls ? 'https' : 'http'}://127.0.0.1:${target.port}/`,
    connections,
    duration: seconds,
    headers: { authorization: digest(target.id) },
    timeout: 10
  })
  return {
    rps: result.requests.total / seconds,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts + result.non2xx
  }
}

/** One request on a fresh connection; resolves with its latency in ms, or rejects. */
async function once (target: Target, request: Buffer): Promise<number> {
  const started = performance.now()
  return await new Promise((resolve, reject) => {
    const socket = target.tls
      ? tls.connect({ port: target.port, host: '127.0.0.1', rejectUnauthorized: false })
      : net.connect({ port: target.port, host: '127.0.0.1' })
    socket.setNoDelay(true)
    let got: Buffer = Buffer.alloc(0)
    let need = -1
    const timer = setTimeout(() => done(new Error('timeout')), 10_000)
    const done = (err?: Error): void => {
      clearTimeout(timer)
      socket.destroy()
      if (err !== undefined) reject(err)
      else resolve(performance.now() - started)
    }
    socket.once(target.tls ? 'secureConnect' : 'connect', () => socket.write(request))
    socket.on('data', (chunk: Buffer) => {
      got = got.length === 0 ? chunk : Buffer.concat([got, chunk])
      if (need < 0) {
        const end = got.indexOf('\r\n\r\n')
        if (end < 0) return
        const head = got.subarray(0, end).toString('latin1')
        if (!head.startsWith('HTTP/1.1 200')) return done(new Error(head.split('\r\n')[0]))
        need = end + 4 + Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0)
      }
      if (got.length >= need) done()
    })
    socket.on('error', done)
    socket.on('close', () => done(new Error('closed early')))
  })
}

/** Scenario 2's request: the Digest header names the ID, and the relay reads nothing else of it. */
const freshRequest = (target: Target): Buffer => Buffer.from(`GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ${digest(target.id)}\r\n\r\n`)

/** Scenario 2: every request on a new connection, `concurrency` at a time. */
export async function freshConnections (target: Target, seconds: number, concurrency: number): Promise<RateResult> {
  const request = freshRequest(target)
  const latencies: number[] = []
  let errors = 0
  const errorKinds: Record<string, number> = {}
  const deadline = performance.now() + seconds * 1000
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      try {
        latencies.push(await once(target, request))
      } catch (err) {
        errors++
        const kind = (err as Error).message
        errorKinds[kind] = (errorKinds[kind] ?? 0) + 1
      }
    }
  }
  const started = performance.now()
  await Promise.all(Array.from({ length: concurrency }, worker))
  const elapsed = (performance.now() - started) / 1000
  return { rps: latencies.length / elapsed, ...percentiles(latencies), errors, ...(errors > 0 ? { errorKinds } : {}) }
}

/** Scenario 2 at `rate` new connections a second for `seconds`, each started on time whether or not earlier ones finished (open loop). */
export async function pacedConnections (target: Target, seconds: number, rate: number): Promise<{ done: number, errors: number }> {
  const request = freshRequest(target)
  let done = 0
  let errors = 0
  const all: Array<Promise<void>> = []
  const started = performance.now()
  for (let i = 0; i < seconds * rate; i++) {
    const wait = started + i * 1000 / rate - performance.now()
    if (wait > 1) await new Promise(resolve => setTimeout(resolve, wait))
    all.push(once(target, request).then(() => { done++ }, () => { errors++ }))
  }
  await Promise.all(all)
  return { done, errors }
}

export function percentiles (values: number[]): { p50: number, p99: number } {
  const sorted = Float64Array.from(values).sort()
  const at = (q: number): number => sorted.length === 0 ? NaN : round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))])
  return { p50: at(0.5), p99: at(0.99) }
}

const round = (n: number): number => Math.round(n * 100) / 100
