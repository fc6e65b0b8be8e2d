import t from 'tap'
import { Registry } from 'prom-client'
import { startRendezvous } from '../helpers/rendezvous'
import { adminUrl, api, TOKEN } from './helpers'

// rendezvous_admin_requests_total: every answer of the admin listener, by action and status, refusals included.

async function counts (registry: Registry): Promise<Record<string, number>> {
  const metric = await registry.getSingleMetric('rendezvous_admin_requests_total')?.get()
  const out: Record<string, number> = {}
  for (const v of metric?.values ?? []) out[`${String(v.labels.action)} ${String(v.labels.status)}`] = v.value
  return out
}

t.test('each admin action is counted with its status, refused tokens and unknown routes too', async t => {
  const metrics = new Registry()
  const relay = await startRendezvous({ plugin: { metrics, admin: { port: 0, token: TOKEN } } })
  t.teardown(relay.close)

  t.equal((await api(relay, 'GET', '/api/ids')).status, 200)
  const added = await api(relay, 'POST', '/api/ids', { id: 'hub-2' })
  t.equal(added.status, 201)
  t.equal((await api(relay, 'POST', '/api/ids', { id: 'hub-2' })).status, 409)
  t.equal((await api(relay, 'POST', '/api/ids/hub-2/rotate', { overlapSeconds: 0 })).status, 200)
  t.equal((await api(relay, 'POST', '/api/ids/hub-2/disconnect')).status, 200)
  t.equal((await api(relay, 'DELETE', '/api/ids/hub-2')).status, 200)
  t.equal((await api(relay, 'DELETE', '/api/ids/hub-2')).status, 404)
  t.equal((await api(relay, 'GET', '/api/ids', undefined, `${TOKEN}x`)).status, 401)
  t.equal((await fetch(adminUrl(relay, '/'))).status, 200)
  t.equal((await api(relay, 'GET', '/api/nothing-here')).status, 404)
  t.equal((await api(relay, 'DELETE', '/api/ids/a%20b')).status, 400)
  t.equal((await api(relay, 'DELETE', `/api/ids/${'y'.repeat(2000)}`)).status, 400)

  t.same(await counts(metrics), {
    'list 200': 1,
    'add 201': 1,
    'add 409': 1,
    'rotate 200': 1,
    'disconnect 200': 1,
    'remove 200': 1,
    'remove 404': 1,
    'list 401': 1,
    'page 200': 1,
    'other 404': 1,
    'remove 400': 1,
    'other 400': 1
  })
})

t.test('without metrics the admin listener still answers', async t => {
  const relay = await startRendezvous({ plugin: { metrics: false, admin: { port: 0, token: TOKEN } } })
  t.teardown(relay.close)
  t.equal((await api(relay, 'GET', '/api/ids')).status, 200)
})
