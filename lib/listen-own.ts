import type { FastifyInstance } from 'fastify'
import { ListenerError } from './errors'

const WHY: Readonly<Record<string, string>> = {
  EADDRINUSE: 'the port is already in use',
  EACCES: 'permission denied',
  EADDRNOTAVAIL: 'no such address on this machine',
  ENOTFOUND: 'the name does not resolve',
  EAI_AGAIN: 'the name does not resolve'
}

/** Why a listener could not listen, in the words every listener of ours uses (admin, metrics, the cluster's peer link). */
export function whyNotListening (err: NodeJS.ErrnoException): string {
  return WHY[err.code ?? ''] ?? err.message.split('\n')[0]
}

/** The most connections an admin or metrics listener holds at once; past it Node closes new ones at accept. */
export const OWN_LISTENER_MAX_CONNECTIONS = 256

/**
 * The bounds of a listener of our own (admin, metrics): it serves short
 * requests to a few clients, and nothing on it may be held open by a client
 * that trickles its head or body. Fastify's default request timeout is none.
 */
export const OWN_LISTENER_TIMEOUTS = { requestTimeout: 30_000, keepAliveTimeout: 72_000 } as const

/** Caps a listener of our own: a flood of connections to it must not take the descriptors the relay needs. */
export function capOwnListener (own: FastifyInstance): void {
  own.server.maxConnections = OWN_LISTENER_MAX_CONNECTIONS
}

/**
 * Starts a second listener (admin, metrics) when `app` is ready and closes it
 * with `app`. A failure names that listener, so it is not taken for the public port's.
 */
export function listenWith (app: FastifyInstance, own: FastifyInstance, name: string, at: { host: string, port: number }): void {
  app.addHook('onReady', async () => {
    try {
      await own.listen({ host: at.host, port: at.port })
    } catch (err) {
      const where = at.host.includes(':') ? `[${at.host}]:${at.port}` : `${at.host}:${at.port}`
      throw new ListenerError(name, where, whyNotListening(err as NodeJS.ErrnoException))
    }
  })
  app.addHook('onClose', async () => { await own.close() })
}
