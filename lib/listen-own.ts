import type { FastifyInstance } from 'fastify'
import { ListenerError } from './errors'

const WHY: Record<string, string> = {
  EADDRINUSE: 'the port is already in use',
  EACCES: 'permission denied',
  EADDRNOTAVAIL: 'no such address on this machine',
  ENOTFOUND: 'the name does not resolve',
  EAI_AGAIN: 'the name does not resolve'
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
      const code = (err as NodeJS.ErrnoException).code ?? ''
      const where = at.host.includes(':') ? `[${at.host}]:${at.port}` : `${at.host}:${at.port}`
      throw new ListenerError(name, where, WHY[code] ?? (err as Error).message.split('\n')[0])
    }
  })
  app.addHook('onClose', async () => { await own.close() })
}
