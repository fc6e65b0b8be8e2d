import t from 'tap'
import { startRendezvous } from '../helpers/rendezvous'
import { statusOf } from '../helpers/wire'

const basic = (user: string): string => `Authorization: Basic ${Buffer.from(`${user}:x`).toString('base64')}\r\n`

/*
 * A relayed request refused before it waits (under pressure, shutting down,
 * the spliced caps) was answered the moment it was decided, ahead of the
 * app's answer to a request pipelined before it: the client took the 503
 * for the earlier request's answer, and lost that answer. It now waits its
 * turn, as every other refusal does.
 */
t.test('a refusal of a relayed request waits for the answers to the requests before it', async t => {
  const relay = await startRendezvous({
    after: app => {
      app.decorate('isUnderPressure', () => true)
      app.get('/slow', async () => { await new Promise(resolve => setTimeout(resolve, 300)); return 'slow\n' })
      app.get('/close', async (_req, reply) => { await new Promise(resolve => setTimeout(resolve, 200)); reply.header('connection', 'close'); return 'bye\n' })
    }
  })
  t.teardown(relay.close)
  const wire = await relay.open()
  wire.write('GET /slow HTTP/1.1\r\nHost: h\r\n\r\n' + `GET / HTTP/1.1\r\nHost: h\r\n${basic('hub-1')}\r\n`)
  await wire.untilClosed()
  t.equal(statusOf(wire.text), 200, 'the app\'s answer first')
  t.match(wire.text, /\r\n\r\nslow\nHTTP\/1\.1 503 Service Unavailable\r\n[^]*\r\n\r\nserver under pressure\n$/, 'then the refusal')

  const before = await relay.app.rendezvous.metrics!.metrics()
  const closing = await relay.open()
  closing.write('GET /close HTTP/1.1\r\nHost: h\r\n\r\n' + `GET / HTTP/1.1\r\nHost: h\r\n${basic('hub-1')}\r\n`)
  await closing.untilClosed()
  t.match(closing.text, /\r\n\r\nbye\n$/, 'behind an answer that closed the connection: no refusal')
  const under = (m: string): string | undefined => /rendezvous_requests_total\{outcome="under_pressure"\} (\d+)/.exec(m)?.[1]
  t.equal(under(await relay.app.rendezvous.metrics!.metrics()), under(before), 'and not counted')
})
