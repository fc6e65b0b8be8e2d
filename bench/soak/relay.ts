import Fastify from 'fastify'
import type { AddressInfo } from 'node:net'
import { Registry as PromRegistry, collectDefaultMetrics } from 'prom-client'
import rendezvous, { MemoryRegistry } from '../../lib/index'

/*
 * The relay under soak, as its own process so that its descriptors and
 * memory can be read from /proc without the load generator's. Plain HTTP:
 * the soak is about the relay's bookkeeping, not TLS. Every parked
 * connection spends a fresh token, and the replay cache keeps each for the
 * token skew plus a margin: with the default 120 s skew the cache alone
 * would grow for the first two minutes of any run. A 5 s skew lets it reach
 * its steady size early, so that what grows after warm-up is something else.
 * Prints `listening PORT` on stdout once ready.
 */
async function main (): Promise<void> {
  const [id, secret] = process.argv.slice(2)
  const metrics = new PromRegistry()
  collectDefaultMetrics({ register: metrics, prefix: 'rendezvous_' })
  const registry = new MemoryRegistry()
  await registry.add({ id, secret })
  const app = Fastify({ logger: false, connectionTimeout: 0, requestTimeout: 30_000 })
  await app.register(rendezvous, { registry, metrics, tokenSkew: 5, replayCacheSize: 200_000, waitTimeout: 10_000, maxParkedPerId: 256 })
  app.get('/healthz', async () => ({ ...app.rendezvous.stats() }))
  // Heap figures are only comparable after a full collection (the soak runs this process with --expose-gc).
  app.get('/gc', async () => {
    (globalThis as { gc?: () => void }).gc?.()
    return { ok: true }
  })
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
