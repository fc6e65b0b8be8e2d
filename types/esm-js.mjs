// @ts-check
// A JavaScript ES module app, checked by TypeScript as editors check it.
import Fastify from 'fastify'
import rendezvous, { MemoryRegistry } from 'fastify-rendezvous'
import { createV1Token } from 'fastify-rendezvous/agent'

const app = Fastify()
app.register(rendezvous, { registry: new MemoryRegistry(), waitTimeout: 2000 })
// @ts-expect-error retryAfter is a number of seconds
app.register(rendezvous, { retryAfter: 'soon' })
await app.ready()
console.log(app.rendezvous.stats().waiting, createV1Token('hub', 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP'))
