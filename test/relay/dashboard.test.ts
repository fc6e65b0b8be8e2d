import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Registry as PromRegistry } from 'prom-client'
import { startRendezvous, untilParked } from '../helpers/rendezvous'
import { relayOnce } from '../helpers/wire'
import { until } from '../helpers/until'

interface Panel { title: string, targets?: Array<{ expr: string }> }

const dashboard = JSON.parse(readFileSync(join(__dirname, '..', '..', 'docs', 'grafana-dashboard.json'), 'utf8')) as { panels: Panel[], templating: { list: Array<{ query?: unknown }> } }

function queried (): Set<string> {
  const exprs = [
    ...dashboard.panels.flatMap(p => (p.targets ?? []).map(target => target.expr)),
    ...dashboard.templating.list.map(v => v.query).filter((q): q is string => typeof q === 'string')
  ]
  const names = new Set<string>()
  for (const expr of exprs) for (const [name] of expr.matchAll(/\brendezvous_[a-z0-9_]+/g)) names.add(name)
  return names
}

t.test('every metric the Grafana dashboard queries exists after a scripted run', async t => {
  const names = queried()
  t.ok(names.size >= 10, `the dashboard queries ${names.size} rendezvous_ series`)
  const registry = new PromRegistry()
  const relay = await startRendezvous({ plugin: { metrics: registry } })
  t.teardown(relay.close)
  const leaving = await relay.park('hub-1')
  await untilParked(relay, 1)
  leaving.socket.destroy()
  await untilParked(relay, 0)
  const refused = await relay.open()
  refused.write('CONNECT uuid:hub-1 HTTP/1.1\r\nHost: h\r\n\r\n')
  await refused.untilClosed()
  const hidden = await relay.park('hub-1')
  await untilParked(relay, 1)
  const client = await relay.open()
  await relayOnce(client, hidden, 'GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="hub-1"\r\n\r\n',
    'HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n', '\r\n\r\n')
  await until(() => relay.app.rendezvous.stats().spliced === 0)
  const text = await registry.metrics()
  for (const name of names) {
    const base = name.replace(/_(bucket|count|sum)$/, '')
    t.ok(registry.getSingleMetric(base), `${name} is registered`)
    t.match(text, new RegExp(`^${name}(\\{| )`, 'm'), `${name} has a sample`)
  }
  t.ok(dashboard.panels.every(p => typeof p.title === 'string' && (p.targets?.length ?? 0) > 0), 'every panel has a title and a query')
})
