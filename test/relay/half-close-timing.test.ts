import t from 'tap'
import { startRendezvous } from '../helpers/rendezvous'
import { openWire, statusOf } from '../helpers/wire'

/*
 * A FIN is forgiven only when it comes with the request, while the relay
 * checks it: a client that half-closes right after its request is relayed
 * to a connection parked for it. One that comes later, while an earlier
 * pipelined answer is still being made, is a client that left: its request
 * must never reach a hidden server, however long that answer took.
 */
t.test('a FIN while an earlier pipelined answer is pending drops the rendezvous request behind it', async t => {
  const relay = await startRendezvous({
    ids: ['hub-1'],
    before: app => { app.get('/slow', async () => { await new Promise(resolve => setTimeout(resolve, 600)); return 'slow' }) }
  })
  t.teardown(relay.close)
  const hidden = await relay.park('hub-1', undefined, true)
  const client = await openWire(relay.port, false, true)
  client.write('GET /slow HTTP/1.1\r\nHost: h\r\n\r\nPOST /pay HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="hub-1"\r\nContent-Length: 0\r\n\r\n')
  await new Promise(resolve => setTimeout(resolve, 150))
  client.socket.end()
  await client.until(c => c.closed, 5000, 'the close')
  t.equal(statusOf(client.text), 200, 'the earlier answer arrives')
  t.notMatch(client.text, /HTTP\/1\.1 (?!200)/, 'and nothing else')
  await new Promise(resolve => setTimeout(resolve, 300))
  t.equal(hidden.text, '', 'the request of the client that left never reached the hidden server')
  t.equal(relay.app.rendezvous.stats().parked, 1, 'and its connection is still parked')
})

t.test('a FIN that comes with the request is relayed to a parked connection, and the answer comes back', async t => {
  const relay = await startRendezvous({ ids: ['hub-1'] })
  t.teardown(relay.close)
  const hidden = await relay.park('hub-1', undefined, true)
  const client = await openWire(relay.port, false, true)
  client.socket.end('GET /with-fin HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="hub-1"\r\n\r\n')
  await hidden.untilText('\r\n\r\n')
  t.match(hidden.text, /^GET \/with-fin HTTP\/1\.1\r\n/)
  hidden.socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok')
  await client.until(c => c.ended, 5000, 'the answer')
  t.ok(client.text.endsWith('ok'), 'the answer reached the half-closed client')
})
