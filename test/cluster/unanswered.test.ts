import t from 'tap'
import { until } from '../helpers/until'
import { LogLines } from './log-lines'
import { rendezvousRequest, startNode } from './nodes'
import { redisMissing, startRedis } from './redis-server'

// Skipped only where redis-server is not installed; .ci/run installs it.
const skip = redisMissing() ?? false

const BODY = 'the hidden server closed the connection before it answered\n'
const ANSWER_502 = 'HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain; charset=utf-8\r\n' +
  `Content-Length: ${BODY.length}\r\nConnection: close\r\n\r\n${BODY}`

// The parked connection is on the node that hands it over; the client's 502 comes from the node it reached, which alone knows its request.
for (const how of ['resets', 'closes'] as const) {
  t.test(`a forwarded exchange whose hidden server ${how} before answering: the client gets a 502`, { skip }, async t => {
    const redis = await startRedis(t)
    const bLog = new LogLines()
    const a = await startNode('a', redis.url)
    const b = await startNode('b', redis.url, {}, bLog)
    t.teardown(async () => { await a.close(); await b.close() })
    const { secret } = await a.app.rendezvous.registry.add({ id: 'hub-1' })
    await until(() => b.app.rendezvous.registry.get('hub-1') !== undefined, 5000, 'the ID on b')
    const hidden = await a.park('hub-1', secret)
    hidden.socket.once('data', () => {
      if (how === 'resets') hidden.socket.resetAndDestroy()
      else hidden.socket.end()
    })

    const request = rendezvousRequest('hub-1')
    const client = await b.open()
    client.write(request.sent)
    await client.until(c => c.ended || c.closed, 5000, 'the end')
    t.equal(client.text, ANSWER_502, 'the 502, byte for byte')
    t.equal(hidden.text, request.received, 'the request had reached the hidden server')
    await until(() => bLog.find('relay closed').length === 1, 5000, "b's relay closed line")
    t.match(bLog.find('relay closed')[0], { outcome: 'forwarded', end: 'unanswered', toClient: 0 })
  })
}
