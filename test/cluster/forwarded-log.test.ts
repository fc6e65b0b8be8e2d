import t from 'tap'
import { until } from '../helpers/until'
import { statusOf } from '../helpers/wire'
import { LogLines } from './log-lines'
import { startNode } from './nodes'
import { redisMissing, startRedis } from './redis-server'

// Skipped only where redis-server is not installed; .ci/run installs it.
const skip = redisMissing() ?? false

t.test("a forwarded exchange's 'relay closed' line counts every byte the hidden server received, and names the parked connection", { skip }, async t => {
  const redis = await startRedis(t)
  const aLog = new LogLines()
  const bLog = new LogLines()
  const a = await startNode('a', redis.url, {}, aLog)
  const b = await startNode('b', redis.url, {}, bLog)
  t.teardown(async () => { await a.close(); await b.close() })
  const { secret } = await a.app.rendezvous.registry.add({ id: 'hub-1' })
  await until(() => b.app.rendezvous.registry.get('hub-1') !== undefined, 5000, 'the ID on b')
  const hidden = await a.park('hub-1', secret)

  const body = Buffer.alloc(100_000, 'x')
  const head = `POST /upload HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="hub-1"\r\nContent-Length: ${body.length}\r\n\r\n`
  const client = await b.open()
  client.write(Buffer.concat([Buffer.from(head), body]))
  const expected = head.length - 'Authorization: Digest username="hub-1"\r\n'.length + body.length
  await hidden.untilBytes(expected, 10_000)
  t.equal(hidden.received.length, expected, 'the head without Authorization, and the whole body')
  hidden.write('HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok')
  await client.untilText('ok')
  t.equal(statusOf(client.text), 201)
  hidden.destroy()
  await client.untilClosed()

  await until(() => bLog.find('relay closed').length === 1, 5000, "b's relay closed line")
  const [closed] = bLog.find('relay closed')
  t.match(closed, { outcome: 'forwarded', toHidden: hidden.received.length })
  const [handed] = aLog.find('handed a parked connection to another node')
  t.match(handed, { id: 'hub-1', connId: /^[0-9a-f]{16}$/ })
  t.equal(closed!.connId, handed!.connId, "b's line names the connection a handed over")
})
