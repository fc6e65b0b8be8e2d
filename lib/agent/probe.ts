import * as net from 'node:net'

// The failures a bare TCP connect can tell the end of: nobody listened, or the way there was missing.
const UNREACHABLE = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN'])

/** Whether `err` says the rendezvous could not even be dialled. */
export function isUnreachable (err: Error): boolean {
  return UNREACHABLE.has((err as NodeJS.ErrnoException).code ?? '')
}

/**
 * Whether a TCP connection to the rendezvous opens now. It costs the server
 * one accept and no TLS handshake, and a server that is down nothing: this is
 * how the agent notices a restart long before its backoff would retry.
 */
export function probe (url: URL, timeoutMs: number): Promise<boolean> {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1')
  const port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port)
  return new Promise((resolve) => {
    const socket = net.connect({ host, port })
    const done = (up: boolean): void => { clearTimeout(timer); socket.destroy(); resolve(up) }
    const timer = setTimeout(() => done(false), timeoutMs)
    socket.once('connect', () => done(true))
    socket.once('error', () => done(false))
  })
}
