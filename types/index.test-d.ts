// Type tests of the public API: `npm run typecheck` compiles this file, and
// each @ts-expect-error must stay an error.
import Fastify from 'fastify'
import { Registry as PromRegistry } from 'prom-client'
import rendezvous, {
  MemoryRegistry,
  MemoryReplayCache,
  createV1Token,
  type RendezvousOptions,
  type TokenVerdict,
  type Registry,
  type RendezvousStats
} from '../lib/index'

const app = Fastify()

app.register(rendezvous)
app.register(rendezvous, { dataDir: '.rendezvous', waitTimeout: 5000, totp: 'reuse', metrics: new PromRegistry() })
app.register(rendezvous, { registry: new MemoryRegistry(), replayCache: new MemoryReplayCache({ maxEntries: 10 }) })
app.register(rendezvous, { verifyToken: (id: string, token: string) => id === token })
app.register(rendezvous, { verifyToken: async (): Promise<TokenVerdict> => ({ ok: false, reason: 'nope', status: 401 }) })
app.register(rendezvous, { metrics: false, authFailures: { perPair: 5 } })

// @ts-expect-error totp is one of three modes
app.register(rendezvous, { totp: 'sometimes' })
// @ts-expect-error waitTimeout is a number of milliseconds
app.register(rendezvous, { waitTimeout: '10s' })

const options: RendezvousOptions = { maxParkedPerId: 8, maxParked: 100, closeGracePeriod: 1000 }
app.register(rendezvous, options)

app.after(() => {
  const registry: Registry = app.rendezvous.registry
  const stats: RendezvousStats = app.rendezvous.stats()
  const parked: number = stats.parked + app.rendezvous.parkedFor('hub')
  const metrics: PromRegistry | undefined = app.rendezvous.metrics
  const secret: string | undefined = registry.get('hub')?.secret
  console.log(secret, parked, metrics)
  // @ts-expect-error stats are read-only numbers, not a function to call twice
  app.rendezvous.stats()()
})

const token: string = createV1Token('hub', 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP')
console.log(token)
