import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { capture } from '../admin/raw'
import { startRendezvous, untilParked } from '../helpers/rendezvous'
import { until } from '../helpers/until'

/*
 * RFC 9112 §9.6: a server that answers `Connection: close` executes nothing
 * the client pipelined behind that answer. A rendezvous request pipelined
 * behind an app's answer that said so was still relayed over plain TCP:
 * Node's response reads as finished (writableFinished) a moment before
 * Node ends the connection, and the relay looked in between. The hidden
 * server ran the request, a parked connection was spent, and the client,
 * told the connection was closing, never saw the answer. An app's
 * maxRequestsPerSocket makes Node say `Connection: close` without ending
 * the connection (what follows gets Node's 503): a request past it was
 * relayed on either transport.
 */

const credential = 'Authorization: Digest username="hub-1", realm="rendezvous", nonce="a", uri="/transfer", response="b"\r\n'
const PIPELINED = `GET /app HTTP/1.1\r\nHost: x\r\n\r\nPOST /transfer HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n${credential}\r\nhello`

const cases = [
  { name: 'an app answer with Connection: close', fastify: {}, closeHeader: true },
  { name: 'the answer that reaches maxRequestsPerSocket', fastify: { maxRequestsPerSocket: 1 }, closeHeader: false }
]

for (const tls of [false, true]) {
  for (const c of cases) {
    t.test(`${tls ? 'TLS' : 'plain'}: a rendezvous request pipelined behind ${c.name} is not relayed, and the connection closes`, async t => {
      const relay = await startRendezvous({
        tls,
        fastify: c.fastify,
        plugin: { lingerTimeout: 500 },
        after: app => {
          app.get('/app', async (_req, reply) => {
            if (c.closeHeader) reply.header('connection', 'close')
            return 'app\n'
          })
        }
      })
      t.teardown(relay.close)
      const hidden = await relay.park('hub-1')
      await untilParked(relay, 1)
      const client = await relay.open()
      client.write(PIPELINED)
      await client.untilClosed()
      t.match(client.text, /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\napp\n$/i, 'the app\'s answer, and nothing after it')
      t.match(client.text, /\r\nconnection: close\r\n/i)
      t.equal(client.text.match(/HTTP\/1\.1 /g)?.length, 1, 'one answer')
      await sleep(200)
      t.equal(hidden.text, '', 'the hidden server got nothing')
      t.equal(relay.app.rendezvous.stats().parked, 1, 'its connection is still parked for the next client')
      const metrics = await relay.app.rendezvous.metrics!.metrics()
      t.notMatch(metrics, /rendezvous_requests_total\{outcome="relayed"\}/, 'nothing relayed')
      hidden.destroy()
    })
  }
}

t.test('a rendezvous request behind an app answer queued behind one that closed the connection is dropped once the connection closes', async t => {
  // Node never gives the middle answer a socket: it emits neither 'finish' nor 'close', and the relay waited on it for ever.
  const log = capture()
  const relay = await startRendezvous({
    fastify: { logger: { level: 'debug', stream: log.stream } },
    plugin: { lingerTimeout: 300 },
    after: app => {
      app.get('/app', async (_req, reply) => {
        reply.header('connection', 'close')
        return 'app\n'
      })
      app.get('/other', async () => 'other\n')
    }
  })
  t.teardown(relay.close)
  const hidden = await relay.park('hub-1')
  await untilParked(relay, 1)
  const client = await relay.open()
  client.write(`GET /app HTTP/1.1\r\nHost: x\r\n\r\nGET /other HTTP/1.1\r\nHost: x\r\n\r\n${PIPELINED.slice(PIPELINED.indexOf('POST'))}`)
  await client.untilClosed()
  t.equal(client.text.match(/HTTP\/1\.1 /g)?.length, 1, 'one answer, the first')
  await until(() => log.lines().some(l => l.msg === 'pipelined request dropped: an earlier answer closed the connection'), 3000, 'the rendezvous request let go')
  t.equal(hidden.text, '', 'the hidden server got nothing')
  t.equal(relay.app.rendezvous.stats().parked, 1)
  hidden.destroy()
})
