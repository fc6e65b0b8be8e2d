import t from 'tap'
import { until } from '../helpers/until'
import { createV1Token } from '../../lib/tokens/v1'
import { statusOf } from '../helpers/wire'
import { LogLines } from './log-lines'
import { rendezvousRequest, startNode } from './nodes'
import { redisMissing, startRedis } from './redis-server'

// Skipped only where redis-server is not installed; .ci/run installs it.
const skip = redisMissing() ?? false

t.test('a Redis outage is its own refusal reason, and one line when lost and one when back', { skip }, async t => {
  const redis = await startRedis(t)
  const log = new LogLines()
  const a = await startNode('a', redis.url, {}, log)
  t.teardown(async () => { await a.close() })
  const { secret } = await a.app.rendezvous.registry.add({ id: 'hub-1' })

  await redis.stop()
  await until(() => !a.app.rendezvous.reachable(), 5000, 'a not ready')
  for (let i = 0; i < 3; i++) {
    const hidden = await a.open()
    hidden.write(`CONNECT uuid:hub-1?response=${createV1Token('hub-1', secret)} HTTP/1.1\r\nHost: h\r\n\r\n`)
    await hidden.untilClosed()
    t.equal(statusOf(hidden.text), 503, 'the token cannot be checked for replay')
    t.match(hidden.text, /\r\nRetry-After: \d+\r\n/)
  }
  const text = await a.app.rendezvous.metrics!.metrics()
  t.match(text, /rendezvous_connect_total\{outcome="store_unavailable"\} 3\n/)
  t.match(text, /rendezvous_refusals_total\{side="hidden",reason="store_unavailable"\} 3\n/)
  t.notMatch(text, /replay_cache_full"\} [1-9]/, 'not counted as a full replay cache')
  await until(() => log.find('lost Redis').length > 0, 5000, 'the line saying Redis is lost')
  t.same(log.find('lost Redis').map(l => [l.level, l.node]), [[40, 'a']], 'one warning, for all the refusals')

  await redis.start()
  await until(() => a.app.rendezvous.reachable(), 10_000, 'a ready again')
  await until(() => log.find('Redis is reachable again').length === 1, 5000, 'the line saying Redis is back')
  t.equal(log.find('Redis is reachable again')[0]!.level, 30, 'at info')
  t.equal(log.find('lost Redis').length, 1, 'still one warning')
})

t.test('while Redis hangs, a lookup that times out logs its message, not a stack', { skip }, async t => {
  const redis = await startRedis(t)
  const log = new LogLines()
  // No liveness ping and no re-read within the test, so the request's own lookup is what meets the hung Redis first.
  const b = await startNode('b', redis.url, {}, log, { heartbeat: 30_000, presenceTtl: 60_000, resyncInterval: 30_000 })
  t.teardown(async () => { redis.resume(); await b.close() })
  await b.app.rendezvous.registry.add({ id: 'hub-1' })
  redis.pause()
  const client = await b.open()
  client.write(rendezvousRequest('hub-1').sent)
  await client.untilClosed(10_000)
  t.equal(statusOf(client.text), 503)
  const [line] = log.find('cannot look up nodes holding this ID')
  t.ok(line, 'the lookup failure is logged')
  t.match(line, { level: 40, id: 'hub-1', error: /Redis did not answer within/ })
  t.notOk('err' in line!, 'no error object, so no stack trace')
  t.notMatch(JSON.stringify(line), /\bat \S+ \(/, 'no stack frames')
})

t.test('once a node has seen Redis hang, CONNECTs and forwarded rendezvous get their 503 at once', { skip }, async t => {
  const redis = await startRedis(t)
  const a = await startNode('a', redis.url)
  t.teardown(async () => { redis.resume(); await a.close() })
  const { secret } = await a.app.rendezvous.registry.add({ id: 'hub-1' })
  redis.pause()
  await until(() => !a.app.rendezvous.reachable(), 6000, 'a sees Redis hang')
  for (const kind of ['CONNECT', 'rendezvous']) {
    const wire = await a.open()
    const started = Date.now()
    wire.write(kind === 'CONNECT' ? `CONNECT uuid:hub-1?response=${createV1Token('hub-1', secret)} HTTP/1.1\r\nHost: h\r\n\r\n` : rendezvousRequest('hub-1').sent)
    await wire.untilClosed()
    t.equal(statusOf(wire.text), 503, kind)
    // The command timeout is 1000 ms; an answer that waited for it would take that long (a CONNECT twice).
    t.ok(Date.now() - started < 700, `${kind} answered without waiting for the command timeout (${Date.now() - started} ms)`)
  }
  redis.resume()
  await until(() => a.app.rendezvous.reachable(), 6000, 'ready again')
  const hidden = await a.park('hub-1', secret)
  t.ok(hidden, 'a CONNECT parks again once a PING is answered')
  hidden.destroy()
})
