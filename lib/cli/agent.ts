import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { AgentOptionError, RendezvousAgent, RendezvousCertificateError, type RendezvousAgentOptions } from '../agent/agent'
import { parseCaBundle } from '../agent/certificates'
import { MIN_MAX_AGE_MS } from '../agent/options'
import { MAX_TIMER_MS, MAX_TIMER_WHY } from '../timer-limit'
import { AGENT_LOG_LEVELS, agentLogger, logAgent, type AgentLogLevel } from './agent-log'
import { redactUrl } from './redact-url'
import { argsError } from './arg-errors'
import { CliError, type CliIo } from './cli-error'
import { NotAllowed } from './config'
import { ignoreOutputErrors } from './quiet-output'
import { report } from './report'
import { watchSignals } from './signals'
import { seconds } from './values'

export const AGENT_USAGE = `usage: rendezvous agent --server URL --id ID --secret BASE32 --to URL
                        [--pool N] [--ca FILE | --insecure]
                        [--to-ca FILE | --to-insecure] [--to-timeout SECONDS]
                        [--max-age SECONDS] [--backoff-max SECONDS] [--log-level LEVEL]

Options:
  --server URL             the rendezvous server, https://HOST[:PORT]; repeat it for
                           the nodes of a cluster, and the pool is spread across them
  --id ID                  this hidden server's ID
  --secret BASE32          its secret; or set RENDEZVOUS_SECRET, which keeps it out of ps
  --to URL                 the local service to relay to, http://127.0.0.1:PORT or https://...
  --to-ca FILE             PEM certificate(s) to trust for an https:// --to
  --to-insecure            do not verify the certificate of an https:// --to
  --to-timeout SECONDS     time to reach --to before the client gets 504 (default 5)
  --pool N                 connections kept waiting at the rendezvous (default 4, at most 1024,
                           and at most (open-file limit - 32) / 2: see docs/agent.md)
  --ca FILE                PEM certificate(s) to trust for the rendezvous (a private CA)
  --insecure               do not verify the rendezvous certificate (dangerous)
  --max-age SECONDS        replace connections parked this long (default 300, at least 1;
                           0: never)
  --backoff-max SECONDS    longest wait between retries (default 30); a server's
                           Retry-After is honoured up to the larger of this and 60 s
  --log-level LEVEL        error, warn, info or debug (default info)

Exits 0 after SIGTERM, SIGINT or SIGHUP (a second one cuts open relays at once),
1 when the rendezvous refuses the credentials (401/403), 2 for a bad command
line or --ca file, 3 when the rendezvous certificate is rejected before
anything parked.
`

const FLAGS = {
  server: { type: 'string', multiple: true },
  id: { type: 'string' },
  secret: { type: 'string' },
  to: { type: 'string' },
  pool: { type: 'string' },
  ca: { type: 'string' },
  insecure: { type: 'boolean' },
  'max-age': { type: 'string' },
  'backoff-max': { type: 'string' },
  'to-ca': { type: 'string' },
  'to-insecure': { type: 'boolean' },
  'to-timeout': { type: 'string' },
  'log-level': { type: 'string', default: 'info' },
  help: { type: 'boolean', short: 'h' }
} as const

// The library names its options; the user typed flags.
const FLAG_OF: Partial<Record<keyof RendezvousAgentOptions, string>> = {
  url: '--server',
  id: '--id',
  secret: '--secret',
  to: '--to',
  pool: '--pool',
  maxAge: '--max-age',
  backoffMax: '--backoff-max',
  ca: '--ca',
  insecure: '--insecure',
  toCa: '--to-ca',
  toInsecure: '--to-insecure',
  toConnectTimeout: '--to-timeout'
}

/** Exit codes (docs/agent.md). */
const EXIT = { closed: 0, refused: 1, forced: 1, certificate: 3 } as const

export interface AgentArgs { options: RendezvousAgentOptions, logLevel: AgentLogLevel }

/**
 * `rendezvous agent ...`: runs until SIGINT/SIGTERM (resolves 0) or refused credentials (resolves 1).
 * `stop`, when given, ends it as a signal would, with its value as the reason (for embedding and tests).
 */
export async function runAgent (args: string[], io: CliIo, stop?: Promise<string>): Promise<number> {
  ignoreOutputErrors(io.stdout, io.stderr)
  let agent: RendezvousAgent
  let parsed: AgentArgs | undefined
  try {
    parsed = parseAgentArgs(args, io.env)
    if (parsed === undefined) {
      io.stdout.write(AGENT_USAGE)
      return 0
    }
    agent = createAgent(parsed.options)
  } catch (err) {
    return report(err, io)
  }
  return await run(agent, parsed, io, stop)
}

/** The agent's options from the command line, or undefined for --help. */
export function parseAgentArgs (args: string[], env: NodeJS.ProcessEnv): AgentArgs | undefined {
  let values
  try {
    ({ values } = parseArgs({ args, options: FLAGS, strict: true, allowPositionals: false }))
  } catch (err) {
    throw argsError(err, 'agent')
  }
  if (values.help === true) return undefined
  const secret = values.secret ?? env.RENDEZVOUS_SECRET
  const missing = ['server', 'id', 'to'].filter((name) => values[name as 'server' | 'id' | 'to'] === undefined)
  if (secret === undefined || secret === '') missing.push('secret (or RENDEZVOUS_SECRET)')
  if (missing.length > 0) throw new CliError(`agent: missing ${missing.map((m) => '--' + m).join(', ')}`)
  if (values.ca !== undefined && values.insecure === true) throw new CliError('agent: --ca and --insecure contradict each other')
  if (values['to-ca'] !== undefined && values['to-insecure'] === true) throw new CliError('agent: --to-ca and --to-insecure contradict each other')
  const logLevel = values['log-level']
  if (!(AGENT_LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new CliError(`agent: --log-level must be one of ${AGENT_LOG_LEVELS.join(', ')}, got ${JSON.stringify(logLevel)}`)
  }
  const options: RendezvousAgentOptions = {
    url: values.server!.length === 1 ? values.server![0]! : values.server!,
    id: values.id!,
    secret: secret!,
    to: values.to!,
    pool: integer(values.pool, '--pool'),
    ca: values.ca === undefined ? undefined : readCa(values.ca, '--ca'),
    insecure: values.insecure === true,
    toCa: values['to-ca'] === undefined ? undefined : readCa(values['to-ca'], '--to-ca'),
    toInsecure: values['to-insecure'] === true ? true : undefined,
    toConnectTimeout: duration(values['to-timeout'], '--to-timeout'),
    maxAge: duration(values['max-age'], '--max-age'),
    backoffMax: duration(values['backoff-max'], '--backoff-max')
  }
  return { options, logLevel: logLevel as AgentLogLevel }
}

function createAgent (options: RendezvousAgentOptions): RendezvousAgent {
  try {
    return new RendezvousAgent(options)
  } catch (err) {
    if (err instanceof AgentOptionError && err.option !== undefined) throw new CliError(`agent: ${FLAG_OF[err.option] ?? err.option} ${err.problem}`)
    // What no flag names (RENDEZVOUS_SPLICE), in the library's words.
    if ((err as { code?: string }).code === 'FST_RENDEZVOUS_AGENT_BAD_OPTION') throw new CliError(`agent: ${(err as Error).message.replace(/^RendezvousAgent: /, '')}`)
    throw err
  }
}

async function run (agent: RendezvousAgent, { options, logLevel }: AgentArgs, io: CliIo, stop?: Promise<string>): Promise<number> {
  const log = agentLogger(io, logLevel)
  logAgent(agent, io, log)
  const servers = (Array.isArray(options.url) ? options.url : [options.url]).map(redactUrl).join(',')
  log('info', `agent for ID ${String(options.id)} at ${servers}, relaying to ${redactUrl(options.to ?? '')} (pool ${options.pool ?? 4})`)
  // SIGHUP too (a closed terminal, or a `systemctl reload` meant for serve): the agent has nothing to reload, and Node's default would cut every relay without a word.
  const signals = watchSignals(['SIGTERM', 'SIGINT', 'SIGHUP'])
  let fatal = false
  const finished = new Promise<number>((resolve) => {
    agent.once('fatal', (err) => {
      fatal = true
      // The agent ran: its last word is a log line like the others, timestamped (a bad command line, before that, is not).
      log('error', err.message)
      const { active } = agent.stats
      if (active > 0) log('info', `${active} relayed ${active === 1 ? 'connection is' : 'connections are'} still open: the agent exits when ${active === 1 ? 'it ends' : 'they end'} (a signal cuts them)`)
      agent.once('close', () => resolve(err instanceof RendezvousCertificateError ? EXIT.certificate : EXIT.refused))
    })
    const onSignal = (signal: string): void => {
      if (fatal) {
        // Already closing, and waiting for relayed connections with no grace: a signal is the word to cut them.
        log('warn', `${signal}: closing now`)
        agent.destroy().catch(() => {})
        return
      }
      log('info', `${signal}: closing`)
      agent.close().then(() => resolve(EXIT.closed), () => resolve(EXIT.forced))
      // The second signal, like serve's: open relays are cut at once.
      signals.second.then((again) => {
        log('warn', `${again}: closing now`)
        agent.destroy().catch(() => {})
        resolve(EXIT.forced)
      }, () => {})
    }
    // A failed `stop` is no reason to stop.
    const stopped = stop?.catch(async () => await new Promise<string>(() => {}))
    Promise.race([signals.first, ...(stopped === undefined ? [] : [stopped])]).then(onSignal, () => {})
  })
  try {
    // A refusal before the first park arrives here and as 'fatal'; the latter decides the exit code.
    agent.start().catch(() => {})
    const code = await finished
    if (code === EXIT.closed) log('info', 'closed')
    return code
  } finally {
    signals.stop()
  }
}

// Read and parsed at start: a file that holds no certificate is a one-line error now, not a retry loop later.
function readCa (file: string, flag: string): Buffer {
  let pem: Buffer
  try {
    pem = readFileSync(file)
  } catch (err) {
    throw new CliError(`agent: cannot read ${flag} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  try {
    parseCaBundle(pem, `${flag} ${file}`)
  } catch (err) {
    throw new CliError(`agent: ${(err as Error).message}`)
  }
  return pem
}

function integer (value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new CliError(`agent: ${flag} must be a whole number of at least 1`)
  return Number(value)
}

// Each becomes a timer: checked here in seconds, as typed, before the library would in ms.
const TIMER = { max: Math.floor(MAX_TIMER_MS / 1000), maxWhy: MAX_TIMER_WHY }
const DURATIONS = {
  '--to-timeout': seconds(TIMER),
  '--backoff-max': seconds(TIMER),
  '--max-age': seconds({ ...TIMER, zero: true, min: MIN_MAX_AGE_MS / 1000 })
}

function duration (value: string | undefined, flag: keyof typeof DURATIONS): number | undefined {
  if (value === undefined) return undefined
  try {
    return DURATIONS[flag](value)
  } catch (err) {
    if (!(err instanceof NotAllowed)) throw err
    throw new CliError(`agent: ${flag} must be ${err.message}, got ${JSON.stringify(value)}`)
  }
}
