import type { FastifyInstance } from 'fastify'
import { readiness, type ReadinessProbe } from './readiness'

export interface HealthRoutes {
  /** Liveness path, or false for none. */
  healthPath: string | false
  /** Readiness path, or false for none. */
  readyPath: string | false
}

/**
 * GET healthPath (alive: 200 while the process answers) and GET readyPath
 * (200 only when this node should take new traffic, else 503 with the
 * reasons). Both are ordinary routes, so the rendezvous challenge never
 * answers them and they need no credentials.
 */
export function addHealthRoutes (app: FastifyInstance, paths: HealthRoutes, probe: ReadinessProbe, counts: () => object): void {
  // Probes come every few seconds; at info level they would drown the log. The pressureHandler
  // lets @fastify/under-pressure pass these through, so readiness can say why it is 503.
  const config = { logLevel: 'warn' as const, config: { pressureHandler: () => undefined } }
  if (paths.healthPath !== false) {
    app.get(paths.healthPath, config, async (_request, reply) => {
      reply.header('cache-control', 'no-store')
      return { status: 'ok', ...counts() }
    })
  }
  if (paths.readyPath !== false) {
    app.get(paths.readyPath, config, async (_request, reply) => {
      const { ready, reasons } = await readiness(probe)
      reply.code(ready ? 200 : 503).header('cache-control', 'no-store')
      return ready ? { status: 'ready' } : { status: 'not ready', reasons }
    })
  }
}
