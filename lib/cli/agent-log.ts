import type { RendezvousAgent } from '../agent/agent'
import type { CliIo } from './cli-error'
import { printable } from '../http/log-text'

export const AGENT_LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const
export type AgentLogLevel = typeof AGENT_LOG_LEVELS[number]

const RANK: Record<AgentLogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 }

// The agent's own errors for a relay it answered itself, whose messages name the cause.
const NAMED_CAUSES = new Set(['FST_RENDEZVOUS_AGENT_LOCAL_CLOSED', 'FST_RENDEZVOUS_AGENT_NO_DESCRIPTORS', 'FST_RENDEZVOUS_AGENT_LOCAL_NOT_TLS', 'FST_RENDEZVOUS_AGENT_LOCAL_CERTIFICATE'])

export type Log = (level: AgentLogLevel, line: string) => void

/** Timestamped lines, those below `level` dropped: info and debug on stdout, warnings and errors on stderr (docs/agent.md). */
export function agentLogger (io: CliIo, level: AgentLogLevel): Log {
  return (at, line) => {
    if (RANK[at] <= RANK[level]) writeLine(io, at, line)
  }
}

/** One line as every line of the agent's looks, whatever the level asked for: `ISO-TIME [LEVEL ]message`. */
export function writeLine (io: CliIo, at: AgentLogLevel, line: string): void {
  const out = RANK[at] <= RANK.warn ? io.stderr : io.stdout
  // One event, one line: messages from below (OpenSSL's, a peer's) may carry their own line breaks,
  // and other control characters (a NEL, a terminal's CSI) are escaped.
  const text = printable(line.replace(/\s*[\r\n]+\s*/g, ' ').trim())
  out.write(`${new Date().toISOString()} ${at === 'info' ? '' : at.toUpperCase() + ' '}${text}\n`)
}

/**
 * What an operator reads: at info one line per relayed connection, every
 * failure and close with its reason; at debug each park, take and release.
 */
export function logAgent (agent: RendezvousAgent, io: CliIo, log: Log): void {
  // Said on every start, as loud as it is meant to be: whatever --log-level asks for.
  agent.on('warning', (message) => writeLine(io, 'warn', message))
  // At info, the moments an operator looks for: the first park, and the first after failures (the last line would say it is still retrying).
  let parkedOnce = false
  let failing: { since: number, attempts: number } | undefined
  agent.on('parked', ({ parked, pool }) => {
    const after = failing === undefined ? '' : ` after ${failing.attempts} failed ${failing.attempts === 1 ? 'attempt' : 'attempts'} in ${((Date.now() - failing.since) / 1000).toFixed(1)} s`
    if (!parkedOnce) log('info', `parked the first connection${after}: ready for mobile clients`)
    else if (failing !== undefined) log('info', `parked again${after}`)
    parkedOnce = true
    failing = undefined
    log('debug', `parked (${parked}/${pool} waiting)`)
  })
  agent.on('taken', ({ parked, active }) => log('debug', `taken by a mobile client (${parked} waiting, ${active} active)`))
  agent.on('released', ({ active }) => log('debug', `relay finished (${active} active)`))
  agent.on('relayed', ({ request, answered, error, durationMs }) => {
    const what = request ?? 'a request'
    if (answered === 503) log('warn', `${what}: answered 503, the agent closed before the local service answered`)
    // Accepted and then dropped, or never dialled for want of a descriptor: its message says so; anything else never reached the service.
    else if (answered !== undefined && NAMED_CAUSES.has((error as { code?: string } | undefined)?.code ?? '')) log('warn', `${what}: answered ${answered}, ${error!.message}`)
    else if (answered !== undefined) log('warn', `${what}: answered ${answered}, the local service cannot be reached: ${error?.message ?? ''}`)
    else log('info', `${what} relayed in ${durationMs} ms${error === undefined ? '' : ` (ended by ${error.message})`}`)
  })
  agent.on('dropped', ({ reason }) => log('info', `a parked connection closed: ${reason}`))
  agent.on('replaced', ({ age }) => log('debug', `replaced a connection parked for ${Math.round(age / 1000)} s`))
  agent.on('backoff', ({ delay, attempt, reason }) => {
    failing = { since: failing?.since ?? Date.now(), attempts: (failing?.attempts ?? 0) + 1 }
    log('info', `retrying in ${(delay / 1000).toFixed(1)} s (attempt ${attempt}): ${reason}`)
  })
  agent.on('error', (err, phase) => {
    if (phase === 'connect') log('warn', `cannot park: ${err.message}`)
    else log('debug', `relay error: ${err.message}`)
  })
}
