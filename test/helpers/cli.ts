import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/*
 * The one way tests spawn processes: the built CLI (`dist/cli/main.js`) and
 * real clients (curl, Python). Every process runs under a small watchdog that
 * kills it when this test process goes away, however it goes away, and is
 * stopped at teardown.
 *
 * Build policy: tests run dist/ as it is, because it is what users run. They
 * never rebuild it: tap runs files in parallel, and rewriting dist/ under
 * other running tests would break them. `npm test` builds first; a missing
 * build fails, a stale one earns a comment.
 */

export const ROOT = join(__dirname, '..', '..')
/** The built bin, as `npm run build` leaves it. */
export const CLI_MAIN = join(ROOT, 'dist', 'cli', 'main.js')

interface Teardown { teardown: (fn: () => unknown) => void }

/** Why tests of the built bin cannot run, if they cannot. */
export function buildProblem (t: { comment?: (...message: unknown[]) => void }): string | undefined {
  if (!existsSync(CLI_MAIN)) return `${CLI_MAIN} is missing: run npm run build first`
  const newer = newestSource(join(ROOT, 'lib'))
  if (newer.mtime > statSync(CLI_MAIN).mtimeMs) {
    const warning = `WARNING: dist/ is older than ${newer.file}; these tests run the old build`
    if (t.comment !== undefined) t.comment(warning)
    else process.stderr.write(warning + '\n')
  }
  return undefined
}

function newestSource (dir: string): { file: string, mtime: number } {
  let newest = { file: '', mtime: 0 }
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    const candidate = entry.isDirectory() ? newestSource(path) : entry.name.endsWith('.ts') ? { file: path, mtime: statSync(path).mtimeMs } : newest
    if (candidate.mtime > newest.mtime) newest = candidate
  }
  return newest
}

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
  /** Stdout as text. */
  stdout: () => string
  /** Stdout byte for byte, for binary output (curl). */
  stdoutBytes: () => Buffer
  stderr: () => string
  /** Both streams as text, for failure messages. */
  output: () => string
  exited: Promise<Exit>
  /** Whether the process has exited. */
  done: () => boolean
  /** Resolves with the first match in stdout or stderr; rejects when the process exits first or time runs out. */
  waitFor: (pattern: RegExp, timeoutMs?: number) => Promise<RegExpMatchArray>
  /** Sends `signal`; after `graceMs` (default 15 s) kills it outright. Resolves with the exit. */
  stop: (signal?: NodeJS.Signals, graceMs?: number) => Promise<Exit>
  /** Kills it outright (SIGKILL through the watchdog) and waits for the exit. */
  kill: () => Promise<Exit>
}

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv
  cwd?: string
  /** The process is SIGKILLed after this long. */
  timeoutMs?: number
  /**
   * Default true. False spawns the process directly, one Node start cheaper:
   * for short commands bounded by timeoutMs, which a killed test process
   * leaves running for that long at most.
   */
  watchdog?: boolean
}

/**
 * Spawns `cmd args` under the watchdog. At teardown the process is stopped:
 * SIGTERM, then SIGKILL after two seconds.
 */
export function spawnProc (t: Teardown, name: string, cmd: string, args: string[], opts: SpawnOptions = {}): Proc {
  const watched = opts.watchdog !== false
  const child = spawn(watched ? process.execPath : cmd, watched ? ['-e', WATCHDOG, JSON.stringify([cmd, ...args])] : args, {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, NODE_OPTIONS: '', ...opts.env },
    stdio: [watched ? 'pipe' : 'ignore', 'pipe', 'pipe']
  })
  const hardKill = (): void => {
    if (watched) child.stdin?.end()
    else child.kill('SIGKILL')
  }
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
  const hardTimer = opts.timeoutMs === undefined ? undefined : setTimeout(hardKill, opts.timeoutMs)
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
    hardKill()
    return await exited
  }
  const stop = async (signal: NodeJS.Signals = 'SIGTERM', graceMs = 15_000): Promise<Exit> => {
    if (!isDone) child.kill(signal)
    const timer = setTimeout(hardKill, graceMs)
    try {
      return await exited
    } finally {
      clearTimeout(timer)
    }
  }
  t.teardown(async () => { await stop('SIGTERM', 2000) })

  return {
    name,
    child,
    stdout: () => Buffer.concat(out).toString('utf8'),
    stdoutBytes: () => Buffer.concat(out),
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
  return { ...exit, stdout: proc.stdoutBytes(), stderr: proc.stderr(), ms: Date.now() - started }
}

/** As for spawnProc; timeoutMs defaults to 15 s for runCli, none for startCli. */
export type CliOptions = SpawnOptions

export type CliProcess = Proc

export interface CliResult extends Exit { stdout: string, stderr: string, ms: number }

// The user's NODE_OPTIONS or DEBUG would change what the bin prints.
function cliOptions (opts: CliOptions): SpawnOptions {
  return { ...opts, env: { DEBUG: '', ...opts.env } }
}

/**
 * Spawns the built CLI with this very Node, without the watchdog unless
 * asked for (a Node start less each; teardown still kills it): the CLI tests
 * start many of them in a row, and load makes every start slow.
 */
export function startCli (t: Teardown, args: string[], opts: CliOptions = {}): CliProcess {
  return spawnProc(t, `rendezvous ${args[0] ?? ''}`.trim(), process.execPath, [CLI_MAIN, ...args], cliOptions({ watchdog: false, ...opts }))
}

/** Runs the built CLI to its end. */
export async function runCli (t: Teardown, args: string[], opts: CliOptions = {}): Promise<CliResult> {
  const result = await run(t, process.execPath, [CLI_MAIN, ...args], cliOptions({ timeoutMs: 15_000, watchdog: false, ...opts }))
  return { ...result, stdout: result.stdout.toString('utf8') }
}

export function describeExit (exit: Exit): string {
  return exit.signal === null ? `code ${exit.code}` : `signal ${exit.signal}`
}

/**
 * `rendezvous serve --no-tls` on a port of its own, over a fresh data dir
 * holding one ID (removed at teardown): the ID's secret, the port and the
 * process. `args` go to serve after the defaults.
 */
export async function servePlainWithId (t: Teardown, id: string, args: string[] = []): Promise<{ secret: string, port: number, serve: CliProcess }> {
  const dir = mkdtempSync(join(tmpdir(), 'rendezvous-serve-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const added = JSON.parse((await runCli(t, ['ids', 'add', '--data-dir', dir, '--id', id, '--json'])).stdout) as { secret: string }
  const serve = startCli(t, ['serve', '--no-tls', '--port', '0', '--data-dir', dir, ...args])
  const [, port] = await serve.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)\//)
  return { secret: added.secret, port: Number(port), serve }
}
