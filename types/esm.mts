// A TypeScript ES module app: the default and the named import are both the plugin.
import Fastify from 'fastify'
import { Registry as PromRegistry } from 'prom-client'
import rendezvous, {
  rendezvous as named,
  MemoryRegistry,
  MemoryReplayCache,
  createV1Token,
  type RendezvousOptions,
  type Registry,
  type RendezvousStats,
  type IdCounts,
  type SplicePath,
  type TokenVerdict
} from 'fastify-rendezvous'
import { RendezvousAgent, RendezvousAuthError, createTotp, type AgentStats } from 'fastify-rendezvous/agent'
import { createRendezvousFetch } from 'fastify-rendezvous/client'

const app = Fastify({ clientErrorHandler: rendezvous.clientErrorHandler, frameworkErrors: rendezvous.frameworkErrors })
app.register(rendezvous, { waitTimeout: 5000, totp: 'reuse', metrics: new PromRegistry() })
app.register(named, { registry: new MemoryRegistry(), replayCache: new MemoryReplayCache({ maxEntries: 10 }) })
app.register(rendezvous, { verifyToken: async (): Promise<TokenVerdict> => ({ ok: false, reason: 'nope', status: 401 }) })
app.register(rendezvous, { verifyToken: (): TokenVerdict => ({ ok: true }) })
// @ts-expect-error a refusal is answered 401 or 503
app.register(rendezvous, { verifyToken: (): TokenVerdict => ({ ok: false, reason: 'no', status: 403 }) })
// @ts-expect-error waitTimeout is a number of milliseconds
app.register(rendezvous, { waitTimeout: '10s' })
// @ts-expect-error totp is one of three modes
app.register(named, { totp: 'sometimes' })
const options: RendezvousOptions = { maxParkedPerId: 8, closeGracePeriod: 1000 }
app.register(rendezvous, options)

await app.after()
const registry: Registry = app.rendezvous.registry
const stats: RendezvousStats = app.rendezvous.stats()
const metrics: PromRegistry | undefined = app.rendezvous.metrics
console.log(registry.get('hub')?.secret, stats.parked + app.rendezvous.parkedFor('hub'), metrics)
const hubCounts: IdCounts | undefined = app.rendezvous.perId().get('hub')
const path: SplicePath = 'js'
console.log(hubCounts?.waiting, path)

const agent = new RendezvousAgent({ url: 'https://rendezvous.example', id: 'hub', secret: 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP', to: 'http://127.0.0.1:3000' })
agent.on('parked', ({ parked, pool }) => console.log(parked, pool))
agent.on('fatal', (err) => console.log(err instanceof RendezvousAuthError ? err.status : err.problem))
const counters: AgentStats = agent.stats
// @ts-expect-error the agent needs its secret
new RendezvousAgent({ url: 'https://rendezvous.example', id: 'hub', to: 'http://127.0.0.1:3000' }) // eslint-disable-line no-new

const viaRendezvous = createRendezvousFetch({ id: 'hub' })
const res: Response = await viaRendezvous('https://rendezvous.example/status')
console.log(counters, res.status, createV1Token('hub', 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP'), createTotp('JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP'))
