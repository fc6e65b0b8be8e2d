import { parseArgs } from 'node:util'
import { DEMO_HOST, startDemo, type Demo } from '../demo/demo'
import { canonicalId } from '../registry/ids'
import type { LogLevel } from '../server/serve-options'
import { argsError } from './arg-errors'
import { CliError, type CliIo } from './cli-error'
import { logLevel, nonEmpty, port } from './flags'
import { shellQuote } from '../shell-quote'
import { command, firstLine, helpless, startupError } from './report'
import { watchSignals } from './signals'

export const DEMO_USAGE = `usage: rendezvous demo [--port 8443] [--data-dir DIR] [--id ID] [--log-level LEVEL]

Runs the whole loop in one process, on 127.0.0.1: a rendezvous server with a
self-signed certificate, a freshly provisioned ID, an agent that parks
connections for it, and a small hidden web page behind the agent (a script,
an image, a form and a WebSocket). Open the URL it prints in a browser and
give the ID as the user name, with any password.

Options:
  --port PORT          port to listen on; 0 picks a free one (default 8443)
  --data-dir DIR       keep the ID and the certificate in DIR (default: a fresh
                       temporary directory, removed when the demo stops)
  --id ID              serve under this ID: reused if DIR has it, else added
                       (default: a new UUID)
  --log-level LEVEL    the server's log level on stderr: fatal, error, warn,
                       info, debug, trace or silent (default warn)

Ctrl-C or SIGTERM stops the demo.
`

export interface DemoArgs {
  help: boolean
  port: number
  dataDir?: string
  id?: string
  logLevel: LogLevel
}

const OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  port: { type: 'string', default: '8443' },
  'data-dir': { type: 'string' },
  id: { type: 'string' },
  'log-level': { type: 'string', default: 'warn' }
} as const

/** `rendezvous demo`: runs until SIGTERM or SIGINT, then closes everything and resolves 0. */
export async function runDemo (args: string[], io: CliIo): Promise<number> {
  return await command(io, DEMO_USAGE, () => helpless(parseDemoArgs(args)), async parsed => await run(parsed, io))
}

async function run (parsed: DemoArgs, io: CliIo): Promise<number> {
  // Installed before anything slow, so that an early Ctrl-C still ends in a clean close.
  const signals = watchSignals()
  try {
    const demo = await startDemo({
      port: parsed.port,
      dataDir: parsed.dataDir,
      id: parsed.id,
      logLevel: parsed.logLevel,
      logStream: io.stderr,
      prettyLogs: (io.stderr as { isTTY?: boolean }).isTTY === true
    }).catch((err: unknown) => { throw demoStartupError(err, parsed.port) })
    io.stdout.write(banner(demo))
    await signals.first
    io.stdout.write('rendezvous demo: stopping\n')
    const outcome = await demo.close(signals.second)
    return outcome === 'forced' ? 1 : 0
  } finally {
    signals.stop()
  }
}

/** Parses and checks `demo` flags; every problem is a one-line CliError with exit code 2. */
export function parseDemoArgs (args: string[]): DemoArgs {
  let values
  try {
    values = parseArgs({ args, options: OPTIONS, strict: true, allowPositionals: false }).values
  } catch (err) {
    throw argsError(err, 'demo')
  }
  if (values.help === true) return { help: true, port: 8443, logLevel: 'warn' }
  const dataDir = nonEmpty(values['data-dir'], '--data-dir')
  const id = values.id === undefined ? undefined : canonicalId(values.id)
  if (values.id !== undefined && id === undefined) {
    throw new CliError(`--id must be 1 to 128 characters of [A-Za-z0-9._~-], got ${JSON.stringify(values.id.slice(0, 140))}`)
  }
  return { help: false, port: port(values.port), dataDir, id, logLevel: logLevel(values['log-level']) }
}

function demoStartupError (err: unknown, at: number): unknown {
  if ((err as Error)?.name === 'RendezvousAuthError') return new CliError(`the demo's agent was refused: ${firstLine((err as Error).message)}`, 1)
  return startupError(err, { host: DEMO_HOST, port: at })
}

function banner (demo: Demo): string {
  const cert = demo.certificate
  const certPath = shellQuote(cert.certPath)
  const lines = [
    'rendezvous demo: the whole loop is running on this machine.',
    '',
    `  URL          ${demo.url}`,
    `  User name    ${demo.id}   (any password)`,
    `  Certificate  ${cert.certPath} (${cert.selfSigned ? 'self-signed' : 'given'}${demo.temporary ? ', removed when the demo stops' : ''})`,
    `  SHA-256      ${cert.fingerprint}`,
    '',
    'Open the URL in a browser on this machine. It will warn about the self-signed',
    'certificate (compare the fingerprint above, then proceed), then ask for a user',
    'name and password: give the ID above, and any password. The page, its script,',
    'its image, its form and its WebSocket all come from a hidden web server that',
    'has no open port, through the rendezvous.',
    '',
    'Or try it with curl:',
    `  curl --digest -u ${demo.id}:x --cacert ${certPath} ${demo.url}`,
    '',
    'Ctrl-C stops the demo.',
    ''
  ]
  return lines.join('\n')
}
