import t from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import Fastify from 'fastify'
import rendezvous, { MemoryRegistry } from '../../lib/index'
import { RendezvousAgent } from '../../lib/agent/agent'
import { createRendezvousFetch } from '../../lib/client/digest-fetch'

// fetch keeps one pool of connections per origin. A connection that carried a
// rendezvous is spliced to its hidden server for good: reused for another
// ID's request, or for the app's own routes, it would deliver them (and their
// credentials) to the wrong hidden server.

t.test('requests for two IDs and the app\'s own route, through one origin, each reach their own server', async t => {
  const registry = new MemoryRegistry()
  const app = Fastify()
  app.get('/healthz', async () => 'the app\n')
  await app.register(rendezvous, { registry })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  for (const id of ['hub-a', 'hub-b']) {
    const { secret } = await registry.add({ id })
    const server = http.createServer((req, res) => res.end(`${id} ${req.url}\n`))
    const agent = new RendezvousAgent({ url: base, id, secret, server, pool: 2 })
    await agent.start()
    t.teardown(() => agent.close())
  }
  const fa = createRendezvousFetch({ id: 'hub-a' })
  const fb = createRendezvousFetch({ id: 'hub-b', preemptive: true })
  const text = async (p: Promise<Response>): Promise<string> => await (await p).text()
  for (let round = 0; round < 3; round++) {
    t.equal(await text(fa(`${base}/a${round}`)), `hub-a /a${round}\n`, `round ${round}: hub-a`)
    t.equal(await text(fetch(`${base}/healthz`)), 'the app\n', `round ${round}: the app, after hub-a`)
    t.equal(await text(fb(`${base}/b${round}`)), `hub-b /b${round}\n`, `round ${round}: hub-b`)
    t.equal(await text(fetch(`${base}/healthz`)), 'the app\n', `round ${round}: the app, after hub-b`)
    t.equal(await text(fa(`${base}/a${round}-again`)), `hub-a /a${round}-again\n`, `round ${round}: hub-a, after hub-b`)
  }
})
