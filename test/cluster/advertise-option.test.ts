import Fastify from 'fastify'
import t from 'tap'
import rendezvous from '../../lib/index'
import { CLUSTER_SECRET } from './nodes'

// The plugin checks cluster.advertise as `serve` checks --advertise, before it touches Redis (nothing listens on port 1).
t.test('cluster.advertise must be an address other nodes can dial', async t => {
  const cases: Array<[string, RegExp]> = [
    ['10.0.0.1:0', /^Invalid rendezvous option: cluster\.advertise has port 0, which no node can dial/],
    ['10.0.0.1:70000', /^Invalid rendezvous option: cluster\.advertise has port 70000/],
    ['0.0.0.0:9443', /^Invalid rendezvous option: cluster\.advertise names 0\.0\.0\.0, an address other nodes cannot dial/],
    ['[::]:9443', /^Invalid rendezvous option: cluster\.advertise names ::, an address/],
    ['nope', /^Invalid rendezvous option: cluster\.advertise must be HOST:PORT, got "nope"$/]
  ]
  for (const [advertise, message] of cases) {
    const app = Fastify()
    app.register(rendezvous, { redis: 'redis://127.0.0.1:1', cluster: { secret: CLUSTER_SECRET, advertise } })
    await t.rejects(async () => { await app.ready() }, { code: 'FST_RENDEZVOUS_BAD_OPTION', message }, advertise)
    await app.close()
  }
})
