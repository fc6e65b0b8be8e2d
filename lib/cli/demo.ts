import { argsError } from './arg-errors'
import { parseArgs } from 'node:util'
import { startDemo, type Demo } from '../demo/demo'
import { canonicalId } from '../registry/ids'
import { LOG_LEVELS, type LogLevel } from '../server/serve-options'
import { CliError, type CliIo } from './cli-error'
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
  const parsed = parseDemoArgs(args)
  if (parsed.help) {
    io.stdout.write(DEMO_USAGE)
    return 0
  }
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
    }).catch((err: unknown) => { throw startupError(err) })
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
  const dataDir = values['data-dir']
  if (dataDir !== undefined && dataDir.trim() === '') throw new CliError('--data-dir must not be empty')
  const id = values.id === undefined ? undefined : canonicalId(values.id)
  if (values.id !== undefined && id === undefined) {
    throw new CliError(`--id must be 1 to 128 characters of [A-Za-z0-9._~-], got ${JSON.stringify(values.id.slice(0, 140))}`)
  }
  const logLevel = values['log-level']
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new CliError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(logLevel)}`)
  }
  return { help: false, port: port(values.port), dataDir, id, logLevel: logLevel as LogLevel }
}

function port (value: string): number {
  const n = Number(value)
  if (!/^\d+$/.test(value) || n > 65535) throw new CliError(`--port must be an integer from 0 to 65535, got ${JSON.stringify(value)}`)
  return n
}

/** Known failures while starting become one-line CliErrors (exit 1); anything else stays unexpected. */
function startupError (err: unknown): unknown {
  if (err instanceof CliError) return err
  const e = err as NodeJS.ErrnoException
  if (typeof e?.code === 'string' && e.code.startsWith('FST_RENDEZVOUS_')) return new CliError(firstLine(e.message), 1)
  if (e?.name === 'RendezvousAuthError') return new CliError(`the demo's agent was refused: ${firstLine(e.message)}`, 1)
  if (typeof e?.code === 'string' && typeof e.path === 'string') return new CliError(`${e.path}: ${firstLine(e.message)}`, 1)
  return err
}

function banner (demo: Demo): string {
  const cert = demo.certificate
  const certPath = quote(cert.certPath)
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

function quote (value: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(value) ? value : `'${value.replace(/'/g, "'\\''")}'`
}

function firstLine (message: string): string {
  return message.split('\n')[0]
}
