import { CliError, type CliIo } from './cli-error'

// The user's own input was wrong: these exit 2, like the parse errors.
const USAGE_CODES = new Set(['FST_RENDEZVOUS_INVALID_ID', 'FST_RENDEZVOUS_INVALID_SECRET'])

/** The first line of a message: the CLI prints one line per error. */
export function firstLine (message: string): string {
  return message.split('\n', 1)[0].trim()
}

/**
 * The one error formatter of the CLI: prints `rendezvous: <one line>` on
 * stderr and returns the exit code. CliErrors and the library's own typed
 * errors (FST_RENDEZVOUS_*) are expected and say what is wrong; a file
 * error names its file; anything else is a bug and says so.
 */
export function report (err: unknown, io: CliIo): number {
  const known = expected(err)
  if (known !== undefined) {
    io.stderr.write(`rendezvous: ${known.message}\n`)
    return known.exitCode
  }
  if (debugging(io.env)) {
    io.stderr.write(`rendezvous: unexpected error: ${(err as Error)?.stack ?? String(err)}\n`)
  } else {
    const message = firstLine(String((err as Error)?.message ?? err))
    io.stderr.write(`rendezvous: unexpected error: ${message} (run with DEBUG=rendezvous for the stack trace)\n`)
  }
  return 1
}

/**
 * The frame of every command: `--help` prints `usage`, anything thrown is
 * reported. `parse` returns undefined for --help.
 */
export async function command<T> (io: CliIo, usage: string, parse: () => T | undefined, run: (parsed: T) => Promise<number>): Promise<number> {
  try {
    const parsed = parse()
    if (parsed === undefined) {
      io.stdout.write(usage)
      return 0
    }
    return await run(parsed)
  } catch (err) {
    return report(err, io)
  }
}

/** Parsed flags, or undefined when they asked for --help. */
export function helpless<T extends { help: boolean }> (parsed: T): T | undefined {
  return parsed.help ? undefined : parsed
}

function expected (err: unknown): CliError | undefined {
  if (err instanceof CliError) return new CliError(firstLine(err.message), err.exitCode)
  const e = err as NodeJS.ErrnoException | undefined
  if (typeof e?.code !== 'string') return undefined
  if (e.code.startsWith('FST_RENDEZVOUS_')) return new CliError(firstLine(e.message), USAGE_CODES.has(e.code) ? 2 : 1)
  if (e.code === 'MODULE_NOT_FOUND' && /Cannot find module 'fastify'/.test(e.message)) {
    return new CliError('this command needs fastify, a peer dependency that was not installed: npm install fastify@5 next to fastify-rendezvous (npm 7 and later install it with the package)', 1)
  }
  if (typeof e.path === 'string') return new CliError(`${e.path}: ${firstLine(e.message)}`, 1)
  return undefined
}

function debugging (env: NodeJS.ProcessEnv): boolean {
  const value = env.DEBUG ?? ''
  return value !== '' && value !== '0' && value !== 'false'
}

/** Where a server was to listen, for the messages of startupError. */
export interface ListenTarget {
  host: string
  port: number
  /** Named when a file error carries no path of its own. */
  dataDir?: string
}

/** What commonly goes wrong while a server starts to listen, as one-line CliErrors (exit 1); anything else is left to report(). */
export function startupError (err: unknown, at: ListenTarget): unknown {
  const e = err as (NodeJS.ErrnoException & { address?: unknown, port?: unknown }) | undefined
  const where = `${formatHost(at.host)}:${at.port}`
  // A second listener (cluster mode's peer link) fails with its own address.
  const own = typeof e?.address === 'string' && typeof e.port === 'number' && e.port !== at.port ? `${formatHost(e.address)}:${e.port}` : undefined
  switch (e?.code) {
    case 'EADDRINUSE': return new CliError(`cannot listen on ${own ?? where}: the port is already in use${own === undefined ? ' (try --port 0)' : ''}`, 1)
    case 'EACCES':
      if (e.syscall === 'listen') return new CliError(`cannot listen on ${where}: permission denied (try a port above 1023, or --port 0)`, 1)
      return new CliError(`${e.path ?? at.dataDir ?? 'a file'}: permission denied`, 1)
    // The address the error names: the peer listener's --peer-host when that is what failed.
    case 'EADDRNOTAVAIL': return new CliError(`cannot listen on ${typeof e.address === 'string' ? formatHost(e.address) : at.host}: no such address on this machine`, 1)
    case 'ENOTFOUND':
    case 'EAI_AGAIN': return new CliError(`cannot listen on ${at.host}: the name does not resolve`, 1)
  }
  return err
}

/** An IPv6 address in brackets, as it goes in a URL or before `:port`. */
export function formatHost (host: string): string {
  return host.includes(':') ? `[${host}]` : host
}
