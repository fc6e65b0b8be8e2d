import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { openSync, readFileSync, closeSync } from 'node:fs'
import net from 'node:net'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { childrenOf, procStat, stopTree, stopTreesNow } from './teardown'

/** Every process the bench started, so that none outlives it, whatever happens: the end of a run, a failure or Ctrl-C. */
const started = new Set<ChildProcess>()
const stopAllNow = (): void => stopTreesNow([...started].map(child => child.pid as number), 3000)
process.on('exit', stopAllNow)
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => { stopAllNow(); process.exit(130) })
}

export const ROOT = join(__dirname, '..', '..')
/** Lets the bench run a full GC in a child before it reads its RSS (see gcThenRss). */
const GC_ON_SIGNAL = ['--expose-gc', '--require', join(ROOT, 'bench', 'procs', 'gc-on-signal.js')]
const TSX = ['--import=tsx', ...GC_ON_SIGNAL]

/** The file-descriptor limit children get: as high as the hard limit allows, for 10,000+ sockets. */
export const NOFILE = (() => {
  const out = spawnSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).stdout.trim()
  const hard = out === 'unlimited' ? 1_048_576 : Number(out)
  return Number.isFinite(hard) && hard > 0 ? Math.min(hard, 65_536) : 1024
})()

/** Runs `cmd` with its open-file limit raised to NOFILE (prlimit), when prlimit exists. */
export function launch (cmd: string, args: string[], opts: { stdout?: number | 'pipe' | 'ignore', cwd?: string, env?: NodeJS.ProcessEnv } = {}): ChildProcess {
  const wrapped = hasCommand('prlimit') ? ['prlimit', `--nofile=${NOFILE}:${NOFILE}`, '--', cmd, ...args] : [cmd, ...args]
  const child = spawn(wrapped[0], wrapped.slice(1), {
    cwd: opts.cwd ?? ROOT,
    env: opts.env ?? process.env,
    stdio: ['ignore', opts.stdout ?? 'pipe', 'pipe']
  })
  started.add(child)
  child.once('exit', () => started.delete(child))
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => { stderr = (stderr + chunk.toString()).slice(-2000) })
  child.once('exit', (code, signal) => {
    if (code !== 0 && code !== null && !stopping.has(child)) process.stderr.write(`bench: ${cmd} ${args.slice(0, 2).join(' ')} exited ${code ?? signal}: ${stderr}\n`)
  })
  return child
}

export interface Script { child: ChildProcess, info: Record<string, unknown>, next: (ms?: number) => Promise<Record<string, unknown>> }

/** Starts a bench/procs script and resolves with its first JSON line; `next` waits for the following ones. */
export async function startScript (script: string, args: string[] = [], firstMs = 30_000): Promise<Script> {
  const child = launch(process.execPath, [...TSX, join(ROOT, 'bench', 'procs', script), ...args])
  const lines: Array<Record<string, unknown>> = []
  let wake = (): void => {}
  createInterface({ input: child.stdout! }).on('line', line => {
    if (!line.startsWith('{')) return
    lines.push(JSON.parse(line))
    wake()
  })
  child.once('exit', () => wake())
  const next = async (ms = 120_000): Promise<Record<string, unknown>> => await bounded(new Promise((resolve, reject) => {
    const check = (): void => {
      const line = lines.shift()
      if (line !== undefined) resolve(line)
      else if (child.exitCode !== null || child.signalCode !== null) reject(new Error(`${script} exited ${child.exitCode ?? child.signalCode}`))
      else wake = check
    }
    check()
  }), ms, `${script} to report`)
  return { child, info: await next(firstMs), next }
}

/** Starts `rendezvous serve` from `dist`, logs to a file as in production, and resolves with its port. */
export async function startServe (dist: string, args: string[], logFile: string, env?: NodeJS.ProcessEnv): Promise<{ child: ChildProcess, port: number }> {
  const fd = openSync(logFile, 'w')
  // BENCH_RELAY_NODE_ARGS='--cpu-prof --cpu-prof-dir=DIR' profiles the relay (NODE_OPTIONS may not carry --cpu-prof).
  const nodeArgs = [...GC_ON_SIGNAL, ...(process.env.BENCH_RELAY_NODE_ARGS ?? '').split(' ').filter(a => a !== '')]
  const child = launch(process.execPath, [...nodeArgs, join(dist, 'cli', 'main.js'), 'serve', '--host', '127.0.0.1', '--port', '0', ...args, ...extraServeArgs()], { stdout: fd, env })
  closeSync(fd)
  const deadline = Date.now() + 30_000
  for (;;) {
    const m = /rendezvous listening on https?:\/\/127\.0\.0\.1:(\d+)\//.exec(readFileSync(logFile, 'latin1'))
    if (m !== null) return { child, port: Number(m[1]) }
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`serve did not start: ${readFileSync(logFile, 'utf8').slice(-500)}`)
    await sleep(50)
  }
}

// BENCH_SERVE_ARGS='--log-level warn' measures the relay with other flags than the defaults.
const extraServeArgs = (): string[] => (process.env.BENCH_SERVE_ARGS ?? '').split(' ').filter(a => a !== '')

const stopping = new WeakSet<ChildProcess>()

export async function stop (child: ChildProcess | undefined): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return
  stopping.add(child)
  const exited = new Promise(resolve => child.once('exit', resolve))
  // A profiled relay or agent writes its profile only when it exits on its own, after its graceful close.
  const profiling = process.env.BENCH_RELAY_NODE_ARGS !== undefined || process.env.BENCH_AGENT_NODE_ARGS !== undefined
  await stopTree(child.pid as number, exited, profiling ? 15_000 : 3000)
}

/** Resident set size of a process, in bytes. The prlimit wrapper exec()s, so the pid is the program's own. */
export function rss (pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'latin1'))
  return m === null ? NaN : Number(m[1]) * 1024
}

export async function freePort (): Promise<number> {
  const server = net.createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as net.AddressInfo).port
  await new Promise(resolve => server.close(resolve))
  return port
}

/** Resolves once something accepts TCP connections on the port. */
export async function untilListening (port: number, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms
  for (;;) {
    const ok = await new Promise<boolean>(resolve => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true) })
      s.on('error', () => resolve(false))
    })
    if (ok) return
    if (Date.now() > deadline) throw new Error(`nothing listens on ${port}`)
    await sleep(100)
  }
}

export function hasCommand (name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0
}

export const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

export async function bounded<T> (work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([work, new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms) })])
  } finally {
    clearTimeout(timer)
  }
}

/** CPU time (user + system) a process and all its descendants have used, in ms; 0 for a process that is gone. */
export function cpuMs (pid: number): number {
  let ticks = 0
  const visit = (p: number): void => {
    const stat = procStat(p)
    if (stat === undefined) return
    // utime and stime, in clock ticks of 10 ms.
    ticks += Number(stat.fields[11]) + Number(stat.fields[12])
    for (const child of childrenOf(p)) visit(child)
  }
  visit(pid)
  return ticks * 10
}
