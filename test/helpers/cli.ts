import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'

export const ROOT = join(__dirname, '..', '..')
/** The built bin, as `npm run build` leaves it. */
export const CLI_MAIN = join(ROOT, 'dist', 'cli', 'main.js')

export interface Exit { code: number | null, signal: NodeJS.Signals | null }

export interface CliProcess {
  child: ChildProcess
  stdout: () => string
  stderr: () => string
  /** Resolves with the first match in stdout; rejects when the process exits first or time runs out. */
  waitFor: (pattern: RegExp, timeoutMs?: number) => Promise<RegExpMatchArray>
  exited: Promise<Exit>
  /** Sends a signal and waits for the exit; rejects if the process outlives timeoutMs. */
  stop: (signal?: NodeJS.Signals, timeoutMs?: number) => Promise<Exit>
}

export interface CliOptions {
  cwd?: string
  env?: NodeJS.ProcessEnv
}

interface Teardown { teardown: (fn: () => void) => void }

/**
 * Why the CLI tests cannot run, if they cannot: they test the compiled bin.
 * A stale dist/ only earns a comment, since in a shared tree someone is
 * often editing lib/ while the tests run.
 */
export function buildProblem (t: { comment: (...message: unknown[]) => void }): string | undefined {
  if (!existsSync(CLI_MAIN)) return `${CLI_MAIN} is missing: run npm run build first`
  const newer = newestSource(join(ROOT, 'lib'))
  if (newer.mtime > statSync(CLI_MAIN).mtimeMs) t.comment(`WARNING: dist/ is older than ${newer.file}; these tests run the old build`)
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

/** Spawns the built CLI with this very Node; the process is killed at teardown if it is still running. */
export function startCli (t: Teardown, args: string[], opts: CliOptions = {}): CliProcess {
  const child = spawn(process.execPath, [CLI_MAIN, ...args], {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, NODE_OPTIONS: '', DEBUG: '', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  let err = ''
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => { out += chunk })
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => { err += chunk })
  const exited = new Promise<Exit>(resolve => {
    child.once('close', (code, signal) => resolve({ code, signal }))
  })
  let done = false
  exited.then(() => { done = true }, () => {})
  t.teardown(() => { if (!done) child.kill('SIGKILL') })

  const waitFor = (pattern: RegExp, timeoutMs = 15_000): Promise<RegExpMatchArray> => new Promise((resolve, reject) => {
    const check = (): void => {
      const match = pattern.exec(out)
      if (match !== null) finish(() => resolve(match))
    }
    const onExit = (): void => {
      check()
      finish(() => reject(new Error(`exited before printing ${pattern}; stdout: ${out} stderr: ${err}`)))
    }
    const timer = setTimeout(() => finish(() => reject(new Error(`no ${pattern} within ${timeoutMs} ms; stdout: ${out} stderr: ${err}`))), timeoutMs)
    let settled = false
    const finish = (settle: () => void): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      child.stdout?.removeListener('data', check)
      settle()
    }
    child.stdout?.on('data', check)
    exited.then(onExit, () => {})
    check()
  })

  const stop = async (signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000): Promise<Exit> => {
    if (!done) child.kill(signal)
    return await withTimeout(exited, timeoutMs, `still running ${timeoutMs} ms after ${signal}`)
  }

  return { child, stdout: () => out, stderr: () => err, waitFor, exited, stop }
}

export interface CliResult extends Exit { stdout: string, stderr: string }

/** Runs the built CLI to its end. */
export async function runCli (t: Teardown, args: string[], opts: CliOptions & { timeoutMs?: number } = {}): Promise<CliResult> {
  const proc = startCli(t, args, opts)
  const exit = await withTimeout(proc.exited, opts.timeoutMs ?? 15_000, `rendezvous ${args.join(' ')} did not exit`)
  return { ...exit, stdout: proc.stdout(), stderr: proc.stderr() }
}

async function withTimeout<T> (promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(message)), ms) })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}
