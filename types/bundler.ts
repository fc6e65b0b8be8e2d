// An app compiled for a bundler (moduleResolution bundler).
import Fastify from 'fastify'
import rendezvous, { type RendezvousOptions, MemoryThrottleStore, errors } from 'fastify-rendezvous'
import { RendezvousAgent } from 'fastify-rendezvous/agent'
import { rendezvousFetch } from 'fastify-rendezvous/client'

const options: RendezvousOptions = { throttleStore: new MemoryThrottleStore(), spliceIdleTimeout: 60_000 }
const app = Fastify().register(rendezvous, options)
// @ts-expect-error closeGracePeriod is a number of milliseconds
app.register(rendezvous, { closeGracePeriod: true })
app.after(() => console.log(app.rendezvous.stats().parked))

const err = new errors.RendezvousOptionError('x')
console.log(err.code, RendezvousAgent.name, typeof rendezvousFetch)
