// @ts-check
// A JavaScript CommonJS app: `require()` gives the plugin itself.
'use strict'
const fastify = require('fastify')
const rendezvous = require('fastify-rendezvous')
const { createRendezvousFetch } = require('fastify-rendezvous/client')

const app = fastify()
app.register(rendezvous, { totp: 'off', registry: new rendezvous.MemoryRegistry() })
// @ts-expect-error metrics is a prom-client Registry or false
app.register(rendezvous, { metrics: 'yes' })
app.ready().then(() => console.log(app.rendezvous.parkedFor('hub')), console.error)
console.log(createRendezvousFetch({ id: 'hub', preemptive: true }))
