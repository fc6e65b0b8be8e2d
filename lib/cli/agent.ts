import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { AgentOptionError, RendezvousAgent, type RendezvousAgentOptions } from '../agent/agent'
import { argsError } from './arg-errors'
import { CliError, type CliIo } from './cli-error'
import { report } from './report'
import { watchSignals } from './signals'

export const AGENT_USAGE = `usage: rendezvous agent --server URL --id ID --secret BASE32 --to URL
                        [--pool N] [--ca FILE | --insecure]
                        [--max-age SECONDS] [--backoff-max SECONDS]

Options:
  --server URL             the rendezvous server, https://HOST[:PORT]; repeat it for
                           the nodes of a cluster, and the pool is spread across them
  --id ID                  this hidden server's ID
  --secret BASE32          its secret; or set RENDEZVOUS_SECRET, which keeps it out of ps
  --to URL                 the local service to relay to, http://127.0.0.1:PORT
  --pool N                 connections kept waiting at the rendezvous (default 4)
  --ca FILE                PEM certificate(s) to trust for the rendezvous (a private CA)
  --insecure               do not verify the rendezvous certificate (dangerous)
  --max-age SECONDS        replace connections parked this long (default 300; 0: never)
  --backoff-max SECONDS    longest wait between retries (default 30)

Exits 1 when the rendezvous refuses the credentials (401/403), 0 after SIGTERM or SIGINT.
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
  help: { type: 'boolean', short: 'h' }
} as const

// The library names its options; the user typed flags.
const FLAG_OF: Partial<Record<keyof RendezvousAgentOptions, string>> = {
  url: '--server', id: '--id', secret: '--secret', to: '--to', pool: '--pool', maxAge: '--max-age', backoffMax: '--backoff-max', ca: '--ca', insecure: '--insecure'
}

/**
 * `rendezvous agent ...`: runs until SIGINT/SIGTERM (resolves 0) or refused credentials (resolves 1).
 * `stop`, when given, ends it as a signal would, with its value as the reason (for embedding and tests).
 */
export async function runAgent (args: string[], io: CliIo, stop?: Promise<string>): Promise<number> {
  let agent: RendezvousAgent
  try {
    const options = parseAgentArgs(args, io.env)
    if (options === undefined) {
      io.stdout.write(AGENT_USAGE)
      return 0
    }
    agent = createAgent(options)
  } catch (err) {
    return report(err, io)
  }
  return await run(agent, io, stop)
}

/** The agent's options from the command line, or undefined for --help. */
export function parseAgentArgs (args: string[], env: NodeJS.ProcessEnv): RendezvousAgentOptions | undefined {
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
  return {
    url: values.server!.length === 1 ? values.server![0]! : values.server!,
    id: values.id!,
    secret: secret!,
    to: values.to!,
    pool: integer(values.pool, '--pool'),
    ca: values.ca === undefined ? undefined : readCa(values.ca),
    insecure: values.insecure === true,
    maxAge: seconds(values['max-age'], '--max-age', true),
    backoffMax: seconds(values['backoff-max'], '--backoff-max', false)
  }
}

function createAgent (options: RendezvousAgentOptions): RendezvousAgent {
  try {
    return new RendezvousAgent(options)
  } catch (err) {
    if (!(err instanceof AgentOptionError)) throw err
    throw new CliError(`agent: ${FLAG_OF[err.option] ?? err.option} ${err.problem}`)
  }
}

async function run (agent: RendezvousAgent, io: CliIo, stop?: Promise<string>): Promise<number> {
  const log = (line: string): void => { io.stdout.write(`${new Date().toISOString()} ${line}\n`) }
  watch(agent, io, log)
  const signals = watchSignals()
  const finished = new Promise<number>((resolve) => {
    agent.once('fatal', (err) => {
      report(new CliError(err.message, 1), io)
      agent.once('close', () => resolve(1))
    })
    const onSignal = (signal: string): void => {
      log(`${signal}: closing`)
      agent.close().then(() => resolve(0), () => resolve(1))
    }
    // A failed `stop` is no reason to stop.
    const stopped = stop?.catch(async () => await new Promise<string>(() => {}))
    Promise.race([signals.first, ...(stopped === undefined ? [] : [stopped])]).then(onSignal, () => {})
  })
  try {
    // A refusal before the first park arrives here and as 'fatal'; the latter decides the exit code.
    agent.start().catch(() => {})
    const code = await finished
    if (code === 0) log('closed')
    return code
  } finally {
    signals.stop()
  }
}

function watch (agent: RendezvousAgent, io: CliIo, log: (line: string) => void): void {
  agent.on('warning', (message) => io.stderr.write(`rendezvous: WARNING: ${message}\n`))
  agent.on('parked', ({ parked, pool }) => log(`parked (${parked}/${pool} waiting)`))
  agent.on('taken', ({ parked, active }) => log(`taken by a mobile client (${parked} waiting, ${active} active)`))
  agent.on('released', ({ active }) => log(`relay finished (${active} active)`))
  agent.on('dropped', ({ error }) => log(`a parked connection was closed${error === undefined ? '' : ': ' + error.message}`))
  agent.on('replaced', ({ age }) => log(`replaced a connection parked for ${Math.round(age / 1000)} s`))
  agent.on('backoff', ({ delay, attempt }) => log(`retrying in ${(delay / 1000).toFixed(1)} s (attempt ${attempt})`))
  agent.on('error', (err, phase) => log(`${phase === 'connect' ? 'cannot park' : phase + ' error'}: ${err.message}${certificateHint(err)}`))
}

// Certificate trouble is the usual first-run mistake with a self-signed rendezvous; say what fixes it.
function certificateHint (err: Error): string {
  const code = (err as NodeJS.ErrnoException).code ?? ''
  return /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ALTNAME/.test(code) ? ' (give the rendezvous certificate or its CA with --ca FILE)' : ''
}

function readCa (file: string): Buffer {
  try {
    return readFileSync(file)
  } catch (err) {
    throw new CliError(`agent: cannot read --ca ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
}

function integer (value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new CliError(`agent: ${flag} must be a whole number of at least 1`)
  return Number(value)
}

function seconds (value: string | undefined, flag: string, zeroOk: boolean): number | undefined {
  if (value === undefined) return undefined
  const n = /^\d+(\.\d+)?$/.test(value) ? Number(value) : NaN
  if (Number.isNaN(n) || (!zeroOk && n === 0)) throw new CliError(`agent: ${flag} must be a number of seconds${zeroOk ? '' : ' above 0'}`)
  return Math.round(n * 1000)
}
