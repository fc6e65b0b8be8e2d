import Fastify from 'fastify'
import type { AddressInfo } from 'node:net'
import { Registry as PromRegistry, collectDefaultMetrics } from 'prom-client'
import rendezvous, { MemoryRegistry } from '../../lib/index'

/*
 * The relay under soak, as its own process so that its descriptors and
 * memory can be read from /proc without the load generator's. Plain HTTP:
 * the soak is about the relay's bookkeeping, not TLS. The replay cache is
 * sized for the soak's CONNECT rate (one fresh token per parked connection).
 * Prints `listening PORT` on stdout once ready.
 */
async function main (): Promise<void> {
  const [id, secret] = process.argv.slice(2)
  const metrics = new PromRegistry()
  collectDefaultMetrics({ register: metrics, prefix: 'rendezvous_' })
  const registry = new MemoryRegistry()
  await registry.add({ id, secret })
  const app = Fastify({ logger: false, connectionTimeout: 0, requestTimeout: 30_000 })
  await app.register(rendezvous, { registry, metrics, replayCacheSize: 2_000_000, waitTimeout: 10_000, maxParkedPerId: 256 })
  app.get('/healthz', async () => ({ ...app.rendezvous.stats() }))
  app.get('/metrics', async (_req, reply) => {
    reply.type(metrics.contentType)
    return await metrics.metrics()
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  process.stdout.write(`listening ${(app.server.address() as AddressInfo).port}\n`)
  const stop = (): void => { app.close().then(() => process.exit(0), () => process.exit(1)) }
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
}

main().catch(err => {
  console.error(err)
  process.exit(1)
})
