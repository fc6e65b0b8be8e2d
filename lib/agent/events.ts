// What the agent tells its user: events, counters and the one error it does not retry.

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

export interface AgentEvents {
  parked: [info: { parked: number, pool: number }]
  taken: [info: { parked: number, active: number }]
  released: [info: { active: number }]
  dropped: [info: { parked: number, error?: Error }]
  replaced: [info: { age: number }]
  backoff: [info: { delay: number, attempt: number, reason: string }]
  error: [err: Error, phase: ErrorPhase]
  fatal: [err: RendezvousAuthError]
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

export function authMessage (id: string, status: number, date: string | undefined): string {
  let message = `the rendezvous refused the credentials for ID ${id} (${status}): check the ID and the secret`
  const serverTime = date === undefined ? NaN : Date.parse(date)
  const skew = Math.round((Date.now() - serverTime) / 1000)
  if (Math.abs(skew) > 60) message += `; this clock is ${Math.abs(skew)} s ${skew > 0 ? 'ahead of' : 'behind'} the server's, and tokens only live 120 s`
  else if (Number.isNaN(skew)) message += ', and that this machine\'s clock is right (tokens only live 120 s)'
  return message
}
