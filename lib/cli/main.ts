#!/usr/bin/env node
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { CliIo } from './cli-error'
import { report } from './report'
import { MAIN_USAGE } from './usage'

export type Command = (args: string[], io: CliIo) => Promise<number>

// Each command is loaded when it runs: Fastify is a peer dependency, which some installs leave out (yarn 1,
// --omit=peer), and only the commands that serve need it; the others, and --version, must work without it.
export const COMMANDS: Readonly<Record<string, Command>> = {
  serve: async (args, io) => await (require('./serve') as typeof import('./serve')).runServe(args, io),
  ids: async (args, io) => await (require('./ids') as typeof import('./ids')).runIds(args, io),
  agent: async (args, io) => await (require('./agent') as typeof import('./agent')).runAgent(args, io),
  demo: async (args, io) => await (require('./demo') as typeof import('./demo')).runDemo(args, io)
}

/** The whole CLI: resolves the exit code, and never rejects. */
export async function main (argv: string[], io: CliIo, commands: Readonly<Record<string, Command>> = COMMANDS): Promise<number> {
  const [name, ...rest] = argv
  try {
    if (name === undefined) {
      io.stderr.write(MAIN_USAGE)
      return 2
    }
    if (HELP.has(name)) {
      const topic = rest[0]
      if (topic === undefined || HELP.has(topic)) {
        io.stdout.write(MAIN_USAGE)
        return 0
      }
      if (VERSION.has(topic)) return printVersion(io)
      // A misspelt topic is the same mistake as a misspelt command: the general usage with exit 0 would hide it.
      if (!Object.hasOwn(commands, topic)) return unknownCommand(topic, io)
      return await commands[topic](['--help'], io)
    }
    if (VERSION.has(name)) return printVersion(io)
    if (!Object.hasOwn(commands, name)) return unknownCommand(name, io)
    return await commands[name](rest, io)
  } catch (err) {
    return report(err, io)
  }
}

const HELP = new Set(['help', '--help', '-h'])
const VERSION = new Set(['--version', '-v'])

function printVersion (io: CliIo): number {
  io.stdout.write(`${version()}\n`)
  return 0
}

function unknownCommand (name: string, io: CliIo): number {
  io.stderr.write(`rendezvous: unknown command ${JSON.stringify(name)}\n\n${MAIN_USAGE}`)
  return 2
}

// Read at run time: package.json lies outside the compiled tree, two levels up from both lib/cli and dist/cli.
function version (): string {
  const pkg = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }
  return pkg.version
}

// Those that run until stopped, whose last lines may be queued for a stdout nobody reads.
const DAEMONS = new Set(['serve', 'agent', 'demo'])
/** How long a stopped daemon waits for its queued output to be read before it ends anyway. */
export const FLUSH_MS = 3000

if (require.main === module) {
  // Node opens its inspector on SIGUSR1, and the inspector runs whatever code a local user sends it:
  // a listener of our own keeps it shut, whoever sends the signal (a log rotation script, as for nginx).
  process.on('SIGUSR1', () => {})
  const argv = process.argv.slice(2)
  main(argv, { stdout: process.stdout, stderr: process.stderr, env: process.env })
    .then(code => code, () => 1)
    .then(code => {
      process.exitCode = code
      if (DAEMONS.has(argv[0] ?? '')) endAfterFlush(code)
    })
}

/**
 * A stalled log pipe would hold a closed daemon's last lines, and the
 * process with them, for ever: they get FLUSH_MS. A termination signal
 * meanwhile ends it at once with 1, as a second signal during the drain
 * does (the command's own handlers are gone by now; without these the
 * signal would kill it, exit 143).
 */
function endAfterFlush (code: number): void {
  setTimeout(() => process.exit(code), FLUSH_MS).unref()
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.once(signal, () => process.exit(1))
}
