// A TypeScript CommonJS app, written the way `require()` users think of the package.
import Fastify = require('fastify')
import rendezvous = require('fastify-rendezvous')
import agent = require('fastify-rendezvous/agent')
import client = require('fastify-rendezvous/client')
import rendezvousDefault, { MemoryRegistry } from 'fastify-rendezvous'

const app = Fastify.fastify({ https: { key: 'KEY', cert: 'CERT' }, clientErrorHandler: rendezvous.clientErrorHandler })
app.register(rendezvous, { dataDir: '.rendezvous', authFailures: { perPair: 5 } })
app.register(rendezvous.rendezvous, { registry: new rendezvous.FileRegistry({ dataDir: '.rendezvous' }) })
app.register(rendezvous.default, { verifyToken: (id: string, token: string) => id === token })
app.register(rendezvousDefault, { registry: new MemoryRegistry() })
// @ts-expect-error maxParked is a number
app.register(rendezvous, { maxParked: 'many' })

app.after(() => {
  const options: rendezvous.RendezvousOptions = { realm: app.rendezvous.registry.get('hub')?.id ?? 'rendezvous' }
  const stats: rendezvous.RendezvousStats = app.rendezvous.stats()
  // @ts-expect-error stats() returns numbers, not a function to call again
  app.rendezvous.stats()()
  const counts: rendezvous.IdCounts | undefined = app.rendezvous.perId().get('hub')
  const path: rendezvous.SplicePath = 'native'
  console.log(options, stats.spliced, counts?.parked, path)
})

const hub = new agent.RendezvousAgent({ url: new URL('https://rendezvous.example'), id: 'hub', secret: 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP', to: 'http://127.0.0.1:3000', pool: 2 })
hub.on('error', (err: Error, phase: 'connect' | 'relay') => console.log(err.message, phase))
void hub.start().then(() => hub.close())
void client.rendezvousFetch('https://rendezvous.example/', { id: 'hub', method: 'POST', body: 'x' }).then((res: Response) => res.text())
const token: string = rendezvous.createV1Token('hub', 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP')
console.log(token)
