// What the agent tells its user: events, counters and the errors it does not retry.
import createError from '@fastify/error'
import type { RendezvousCertificateError } from './certificates'

export interface AgentStats {
  /** Connections dialling, or waiting for the CONNECT's answer. */
  connecting: number
  /** Connections parked at the rendezvous right now. */
  parked: number
  /** Taken connections being served right now. */
  active: number
  /** CONNECTs tried since start. */
  attempts: number
  /** Connections taken by a mobile client since start. */
  taken: number
  /** Attempts that did not end in a 200. */
  failures: number
  /** Parked connections that closed before anyone took them. */
  dropped: number
  /** Parked connections retired after maxAge. */
  replaced: number
}

export type ErrorPhase = 'connect' | 'relay'

/** One relayed connection, once it closed. */
export interface RelayedInfo {
  /** `METHOD /path` of its first request (no query, no headers), when readable. */
  request?: string
  /**
   * 502 or 504 when the agent answered itself because the local service could not be reached, or closed or reset
   * the connection before it sent a byte (502, `error` FST_RENDEZVOUS_AGENT_LOCAL_CLOSED); 503 when the agent closed before it was reached.
   */
  answered?: number
  /** What ended or broke it, absent when it ended cleanly. */
  error?: Error
  /**
   * The data path the local service's bytes took: `native` (the relay's native data path, both connections plain
   * TCP) or `js` (Node streams). Absent when no byte of the local service's was relayed.
   */
  path?: 'native' | 'js'
  durationMs: number
}

export interface AgentEvents {
  parked: [info: { parked: number, pool: number }]
  taken: [info: { parked: number, active: number }]
  released: [info: { active: number }]
  dropped: [info: { parked: number, reason: string, error?: Error }]
  relayed: [info: RelayedInfo]
  replaced: [info: { age: number }]
  backoff: [info: { delay: number, attempt: number, reason: string }]
  error: [err: Error, phase: ErrorPhase]
  fatal: [err: RendezvousAuthError | RendezvousCertificateError]
  warning: [message: string]
  close: []
}

/** The rendezvous refused the credentials (401/403): retrying cannot help. */
export class RendezvousAuthError extends Error {
  readonly code = 'RENDEZVOUS_CREDENTIALS_REFUSED'
  readonly status: number
  constructor (message: string, status: number) {
    super(message)
    this.name = 'RendezvousAuthError'
    this.status = status
  }
}

/**
 * start() on an agent that closed, or is closing: after close(), destroy() or
 * `fatal`, whether or not start() was called before. Nothing parks again.
 */
export const AgentClosedError = createError('FST_RENDEZVOUS_AGENT_CLOSED', 'RendezvousAgent: start() after the agent closed (close(), destroy() or fatal came first): make a new RendezvousAgent', 500)

// Beyond this, the server's Date (whole seconds, sent a moment before it is read) and this clock truly differ.
const CLOCK_NOTED_S = 5

// What the agent can say of token lifetimes: the server's --token-skew is its operator's, not known here.
const SKEW = 'the server refuses tokens older or newer than its token skew (120 s unless its operator changed --token-skew)'

/**
 * `accepted`: the same credentials parked before, so the likely cause changed
 * at the rendezvous. `date`, the refusal's Date header, tells a clock off by
 * more than a few seconds: the message then names the offset, and the clock
 * as a possible cause beside the credentials however small the offset is,
 * as the agent cannot know how much the server tolerates.
 */
export function authMessage (id: string, status: number, date: string | undefined, accepted = false): string {
  const refused = accepted
    ? `the rendezvous now refuses the credentials for ID ${id} (${status}), which it accepted before`
    : `the rendezvous refused the credentials for ID ${id} (${status})`
  const credentials = accepted ? 'the ID was removed there, or its secret changed' : 'check the ID and the secret'
  const serverTime = date === undefined ? NaN : Date.parse(date)
  // No Date to compare with (a proxy in front may drop it): the clock is named as a possible cause, without a number.
  if (Number.isNaN(serverTime)) return `${refused}: ${credentials}, ${accepted ? 'or this machine\'s clock is off' : 'and this machine\'s clock'} (${SKEW})`
  const offset = Math.round((Date.now() - serverTime) / 1000)
  if (Math.abs(offset) <= CLOCK_NOTED_S) return `${refused}: ${credentials}`
  const clock = `this clock is ${Math.abs(offset)} s ${offset > 0 ? 'ahead of' : 'behind'} the server's, and ${SKEW}, so the clock may be the cause`
  return accepted
    ? `${refused}: ${clock}; check both clocks (NTP), and whether ${credentials}`
    : `${refused}: ${clock}; check both clocks (NTP), and the ID and the secret`
}

/** Why a parked connection closed before anyone took it, as a log line can say it. */
export function dropReason (error: Error | undefined, ended: boolean): { reason: string, error?: Error } {
  if (error !== undefined) return { reason: `${(error as NodeJS.ErrnoException).code ?? 'error'}: ${error.message}`, error }
  // A FIN is the server closing it: a restart, the ID removed, or a parked socket that sent bytes.
  return { reason: ended ? 'the rendezvous closed it' : 'the connection was lost' }
}
