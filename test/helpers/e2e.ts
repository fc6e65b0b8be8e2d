import { spawn, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { mkdir, mkdtemp, rm, rmdir, stat } from 'node:fs/promises'
import https from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { startHiddenSite, type HiddenSite } from './hidden-site'

/**
 * End-to-end harness: the built CLI (`dist/cli/main.js`) as real processes,
 * `serve` + `ids add` + `agent`, all on 127.0.0.1, and real clients (curl,
 * Python) run against them. Every process is run under a small watchdog that
 * kills it when this test process goes away, however it goes away, so nothing
 * outlives a test; teardown stops everything and removes the data dirs.
 */

export const ROOT = join(__dirname, '..', '..')
export const CLI_MAIN = join(ROOT, 'dist', 'cli', 'main.js')

interface Teardown { teardown: (fn: () => unknown) => void }

// ---------------------------------------------------------------- build

let built: Promise<void> | undefined

/**
 * Builds once (`tsc -p tsconfig.build.json`, what `npm run build` runs) when
 * dist/cli/main.js is missing or older than a source under lib/. Test files
 * run in parallel, so the build is done under a lock directory.
 */
export function ensureBuilt (): Promise<void> {
  built ??= buildIfStale()
  return built
}

function staleness (): string | undefined {
  if (!existsSync(CLI_MAIN)) return 'dist/cli/main.js is missing'
  const newest = newestSource(join(ROOT, 'lib'))
  if (newest.mtime > statSync(CLI_MAIN).mtimeMs) return `${newest.file} is newer than dist/cli/main.js`
  return undefined
}

function newestSource (dir: string): { file: string, mtime: number } {
  let newest = { file: '', mtime: 0 }
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    let candidate = newest
    if (entry.isDirectory()) candidate = newestSource(path)
    else if (entry.name.endsWith('.ts')) candidate = { file: path, mtime: statSync(path).mtimeMs }
    if (candidate.mtime > newest.mtime) newest = candidate
  }
  return newest
}

async function buildIfStale (): Promise<void> {
  if (staleness() === undefined) return
  const lock = join(tmpdir(), `rendezvous-e2e-build-${createHash('sha256').update(ROOT).digest('hex').slice(0, 16)}.lock`)
  await acquire(lock)
  try {
    // Another test file may have built while this one waited.
    const why = staleness()
    if (why === undefined) return
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')
    const result = await collect(spawn(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.build.json')], {
      cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' }
    }), 120_000)
    const output = `${result.stdout.toString()}${result.stderr}`
    // tsc exits 2 when it found type errors but wrote the output all the same. These tests
    // check what the bin does; `npm test` type-checks on its own and fails on those errors.
    if (result.code === 2 && staleness() === undefined) {
      process.stderr.write(`e2e: the build has type errors (dist/ was written anyway):\n${output}\n`)
      return
    }
    if (result.code !== 0 || !existsSync(CLI_MAIN)) {
      throw new Error(`npm run build failed (${why}); tsc exited ${result.code}:\n${output}`)
    }
  } finally {
    await rmdir(lock).catch(() => {})
  }
}

async function acquire (lock: string): Promise<void> {
  const deadline = Date.now() + 180_000
  for (;;) {
    try {
      await mkdir(lock)
      return
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    // A build takes seconds; a lock this old was left by a killed run.
    const age = await stat(lock).then(s => Date.now() - s.mtimeMs, () => 0)
    if (age > 150_000) await rmdir(lock).catch(() => {})
    if (Date.now() > deadline) throw new Error(`could not take the build lock ${lock}`)
    await sleep(200)
  }
}

// ---------------------------------------------------------------- processes

// Runs argv[1..] with stdout and stderr passed through; kills it when its own
// stdin closes (the test process ended or closed it), forwards SIGTERM, SIGINT
// and SIGHUP, and exits as the child did.
const WATCHDOG = `
const { spawn } = require('node:child_process')
const [cmd, ...args] = JSON.parse(process.argv[1])
const child = spawn(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'] })
const kill = () => { try { child.kill('SIGKILL') } catch {} }
process.stdin.on('end', kill).on('close', kill).on('error', kill).resume()
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, () => { try { child.kill(sig) } catch {} })
child.on('error', (err) => { process.stderr.write('watchdog: ' + err.message + '\\n'); process.exit(127) })
child.on('exit', (code, signal) => {
  if (signal === null) process.exit(code)
  process.removeAllListeners(signal)
  process.kill(process.pid, signal)
})
`

export interface Exit { code: number | null, signal: NodeJS.Signals | null }

export interface Proc {
  name: string
  child: ChildProcess
  stdout: () => Buffer
  stderr: () => string
  /** Both streams as text, for failure messages. */
  output: () => string
  exited: Promise<Exit>
  /** Whether the process has exited. */
  done: () => boolean
  /** Resolves with the first match in stdout or stderr; rejects when the process exits first or time runs out. */
  waitFor: (pattern: RegExp, timeoutMs?: number) => Promise<RegExpMatchArray>
  /** Sends `signal`; after `graceMs` kills it outright. Resolves with the exit. */
  stop: (signal?: NodeJS.Signals, graceMs?: number) => Promise<Exit>
  /** Kills it outright (SIGKILL through the watchdog) and waits for the exit. */
  kill: () => Promise<Exit>
}

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv
  cwd?: string
  /** The watchdog SIGKILLs the process after this long. */
  timeoutMs?: number
}

/**
 * Spawns `cmd args` under the watchdog. At teardown the process is stopped:
 * SIGTERM, then SIGKILL after two seconds.
 */
export function spawnProc (t: Teardown, name: string, cmd: string, args: string[], opts: SpawnOptions = {}): Proc {
  const child = spawn(process.execPath, ['-e', WATCHDOG, JSON.stringify([cmd, ...args])], {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, NODE_OPTIONS: '', ...opts.env },
    stdio: ['pipe', 'pipe', 'pipe']
  })
  const out: Buffer[] = []
  let err = ''
  let text = ''
  const listeners = new Set<() => void>()
  child.stdout?.on('data', (chunk: Buffer) => {
    out.push(chunk)
    text += chunk.toString('utf8')
    for (const fn of listeners) fn()
  })
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk
    text += chunk
    for (const fn of listeners) fn()
  })
  // EPIPE on the watchdog's stdin after it is gone is expected.
  child.stdin?.on('error', () => {})
  let isDone = false
  const hardTimer = opts.timeoutMs === undefined ? undefined : setTimeout(() => { child.stdin?.end() }, opts.timeoutMs)
  const onExit = new Set<(exit: Exit) => void>()
  const exited = new Promise<Exit>(resolve => {
    child.once('close', (code, signal) => {
      isDone = true
      clearTimeout(hardTimer)
      const exit = { code, signal }
      resolve(exit)
      for (const fn of onExit) fn(exit)
    })
  })

  const waitFor = (pattern: RegExp, timeoutMs = 15_000): Promise<RegExpMatchArray> => new Promise((resolve, reject) => {
    const finish = (settle: () => void): void => {
      clearTimeout(timer)
      listeners.delete(check)
      onExit.delete(exitedFirst)
      settle()
    }
    function check (): void {
      const match = pattern.exec(text)
      if (match !== null) finish(() => resolve(match))
    }
    function exitedFirst (exit: Exit): void {
      check()
      if (listeners.has(check)) finish(() => reject(new Error(`${name} exited (${describeExit(exit)}) before printing ${pattern}; output:\n${text}`)))
    }
    const timer = setTimeout(() => finish(() => reject(new Error(`${name}: no ${pattern} within ${timeoutMs} ms; output:\n${text}`))), timeoutMs)
    listeners.add(check)
    onExit.add(exitedFirst)
    check()
    if (isDone && listeners.has(check)) exitedFirst({ code: child.exitCode, signal: child.signalCode })
  })

  const kill = async (): Promise<Exit> => {
    child.stdin?.end()
    return await exited
  }
  const stop = async (signal: NodeJS.Signals = 'SIGTERM', graceMs = 2000): Promise<Exit> => {
    if (!isDone) child.kill(signal)
    const timer = setTimeout(() => { child.stdin?.end() }, graceMs)
    try {
      return await exited
    } finally {
      clearTimeout(timer)
    }
  }
  t.teardown(async () => { await stop() })

  return {
    name,
    child,
    stdout: () => Buffer.concat(out),
    stderr: () => err,
    output: () => text,
    exited,
    done: () => isDone,
    waitFor,
    stop,
    kill
  }
}

export interface RunResult extends Exit {
  stdout: Buffer
  stderr: string
  /** Milliseconds from spawn to exit. */
  ms: number
}

/** Runs a command to its end (killed after timeoutMs) and collects its output. */
export async function run (t: Teardown, cmd: string, args: string[], opts: SpawnOptions = {}): Promise<RunResult> {
  const started = Date.now()
  const proc = spawnProc(t, `${cmd} ${args.join(' ')}`, cmd, args, { timeoutMs: 30_000, ...opts })
  const exit = await proc.exited
  return { ...exit, stdout: proc.stdout(), stderr: proc.stderr(), ms: Date.now() - started }
}

/** Runs the built CLI to its end. */
export async function runCli (t: Teardown, args: string[], opts: SpawnOptions = {}): Promise<RunResult> {
  return await run(t, process.execPath, [CLI_MAIN, ...args], { timeoutMs: 15_000, ...opts })
}

function collect (child: ChildProcess, timeoutMs: number): Promise<{ code: number | null, stdout: Buffer, stderr: string }> {
  return new Promise((resolve) => {
    const out: Buffer[] = []
    let err = ''
    child.stdout?.on('data', (chunk: Buffer) => out.push(chunk))
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => { err += chunk })
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.once('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout: Buffer.concat(out), stderr: err })
    })
  })
}

export function describeExit (exit: Exit): string {
  return exit.signal === null ? `code ${exit.code}` : `signal ${exit.signal}`
}

// ---------------------------------------------------------------- the rendezvous

export interface Rendezvous {
  proc: Proc
  port: number
  /** `https://127.0.0.1:PORT` (no trailing slash). */
  url: string
  dataDir: string
  /** The self-signed certificate serve generated: the CA for every client. */
  certPath: string
  ca: Buffer
  /** GET /healthz, verified against `ca`. */
  healthz: () => Promise<Health>
  /** Polls /healthz until `test` holds. */
  waitHealth: (test: (h: Health) => boolean, what: string, timeoutMs?: number) => Promise<Health>
}

export interface Health { status: string, parked?: number, waiting?: number, spliced?: number }

export interface ServeOptions {
  /** Seconds, for --wait-timeout. */
  waitTimeout?: number
  extraArgs?: string[]
}

/** Starts `rendezvous serve --port 0` with TLS on a fresh data dir; waits for its `listening on` line. */
export async function startServe (t: Teardown, opts: ServeOptions = {}): Promise<Rendezvous> {
  await ensureBuilt()
  const dataDir = await mkdtemp(join(tmpdir(), 'rendezvous-e2e-'))
  // Registered first, so it runs last: after the processes using the dir are gone.
  t.teardown(async () => { await rm(dataDir, { recursive: true, force: true }) })
  const args = [CLI_MAIN, 'serve', '--host', '127.0.0.1', '--port', '0', '--data-dir', dataDir]
  if (opts.waitTimeout !== undefined) args.push('--wait-timeout', String(opts.waitTimeout))
  args.push(...opts.extraArgs ?? [])
  const proc = spawnProc(t, 'serve', process.execPath, args)
  const match = await proc.waitFor(/listening on https:\/\/127\.0\.0\.1:(\d+)\//, 20_000)
  const port = Number(match[1])
  const certPath = join(dataDir, 'tls', 'cert.pem')
  const ca = readFileSync(certPath)
  const url = `https://127.0.0.1:${port}`
  const healthz = (): Promise<Health> => getJson(`${url}/healthz`, ca) as Promise<Health>
  const waitHealth = async (test: (h: Health) => boolean, what: string, timeoutMs = 15_000): Promise<Health> => {
    const deadline = Date.now() + timeoutMs
    let last: Health | string = 'no answer yet'
    for (;;) {
      try {
        last = await healthz()
        if (test(last)) return last
      } catch (err) {
        last = (err as Error).message
      }
      if (proc.done()) throw new Error(`serve exited while waiting for ${what}; output:\n${proc.output()}`)
      if (Date.now() > deadline) throw new Error(`no ${what} within ${timeoutMs} ms; last /healthz: ${JSON.stringify(last)}`)
      await sleep(50)
    }
  }
  return { proc, port, url, dataDir, certPath, ca, healthz, waitHealth }
}

function getJson (url: string, ca: Buffer): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca, agent: false, timeout: 5000 }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8')
        if (res.statusCode !== 200) return reject(new Error(`${url}: ${res.statusCode} ${body}`))
        try {
          resolve(JSON.parse(body))
        } catch {
          reject(new Error(`${url}: not JSON: ${body}`))
        }
      })
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`${url}: timed out`)))
    req.on('error', reject)
  })
}

export interface Credentials { id: string, secret: string }

/** `rendezvous ids add --json --data-dir DIR`. */
export async function addId (t: Teardown, dataDir: string): Promise<Credentials> {
  const result = await runCli(t, ['ids', 'add', '--json', '--data-dir', dataDir])
  if (result.code !== 0) throw new Error(`ids add exited ${describeExit(result)}: ${result.stderr}`)
  let parsed: { id?: unknown, secret?: unknown }
  try {
    parsed = JSON.parse(result.stdout.toString('utf8'))
  } catch {
    throw new Error(`ids add --json printed no JSON: ${result.stdout.toString('utf8')}`)
  }
  if (typeof parsed.id !== 'string' || typeof parsed.secret !== 'string') {
    throw new Error(`ids add --json lacks id or secret: ${result.stdout.toString('utf8')}`)
  }
  return { id: parsed.id, secret: parsed.secret }
}

export interface AgentOptions {
  pool?: number
  /** How many parked connections /healthz must report before this resolves. Default 1. */
  parked?: number
}

/** Starts `rendezvous agent` against `rv` and waits until /healthz reports it parked. */
export async function startAgent (t: Teardown, rv: Rendezvous, creds: Credentials, to: string, opts: AgentOptions = {}): Promise<Proc> {
  const args = [CLI_MAIN, 'agent', '--server', rv.url, '--id', creds.id, '--secret', creds.secret, '--to', to, '--ca', rv.certPath]
  if (opts.pool !== undefined) args.push('--pool', String(opts.pool))
  const proc = spawnProc(t, 'agent', process.execPath, args)
  const want = opts.parked ?? 1
  const parked = rv.waitHealth(h => (h.parked ?? 0) >= want, `${want} parked connection(s)`)
  const died = proc.exited.then(exit => { throw new Error(`agent exited (${describeExit(exit)}) before parking; output:\n${proc.output()}`) })
  died.catch(() => {})
  try {
    await Promise.race([parked, died])
  } catch (err) {
    throw new Error(`${(err as Error).message}\nagent output:\n${proc.output()}`)
  }
  return proc
}

export interface World {
  rv: Rendezvous
  site: HiddenSite
  creds: Credentials
  agent: Proc
}

/** The whole chain: hidden site, serve, an ID, and an agent parked for it. */
export async function startWorld (t: Teardown & { passing?: () => boolean, comment?: (...a: unknown[]) => void }, opts: ServeOptions & AgentOptions = {}): Promise<World> {
  const site = await startHiddenSite(t)
  const rv = await startServe(t, opts)
  const creds = await addId(t, rv.dataDir)
  const agent = await startAgent(t, rv, creds, site.url, opts)
  // Teardowns run last-in first-out: this one runs before the processes are stopped.
  t.teardown(() => {
    if (t.passing?.() === false) {
      t.comment?.(`serve output:\n${rv.proc.output()}\nagent output:\n${agent.output()}`)
    }
  })
  return { rv, site, creds, agent }
}
