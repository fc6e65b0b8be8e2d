import { createServer } from 'node:https'
import type { IncomingMessage } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo, Socket } from 'node:net'
import { connect } from 'node:tls'
import { setFlagsFromString } from 'node:v8'
import t from 'tap'
import { shedConnectState } from '../../lib/relay/handoff'
import { tlsCert, tlsKey } from '../helpers/tls'

// V8's own view of an object's layout: a listener table in dictionary mode costs several times a plain one.
setFlagsFromString('--allow-natives-syntax')
// eslint-disable-next-line no-new-func
const hasFastProperties = new Function('o', 'return %HasFastProperties(o)') as (o: object) => boolean

t.test('a TLS socket taken at its CONNECT sheds the handshake timer and the slow listener table, and still works', async t => {
  const server = createServer({ key: tlsKey, cert: tlsCert })
  t.teardown(() => server.close())
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const client = connect({ port: (server.address() as AddressInfo).port, host: '127.0.0.1', rejectUnauthorized: false })
  t.teardown(() => client.destroy())
  client.on('secureConnect', () => client.write('CONNECT uuid:x HTTP/1.1\r\nHost: x\r\n\r\n'))
  const [, socket] = await once(server, 'connect') as [IncomingMessage, Socket]
  const timerKey = Object.getOwnPropertySymbols(socket).find(s => s.description === 'timeout')!
  const slots = socket as unknown as Record<symbol, unknown> & { _events: object }
  t.ok(slots[timerKey] !== null, 'Node left its cleared handshake timer on the socket')
  t.notOk(hasFastProperties(slots._events), 'and its listener table in dictionary mode')
  let closes = 0
  socket.on('close', () => closes++)
  const listeners = ['close', 'end', 'error', 'data'].map(e => socket.listenerCount(e))

  shedConnectState(socket)
  t.equal(slots[timerKey], null, 'the cleared timer is dropped')
  t.ok(hasFastProperties(slots._events), 'the listener table is a plain object again')
  t.same(['close', 'end', 'error', 'data'].map(e => socket.listenerCount(e)), listeners, 'every listener kept')

  // The socket still carries bytes both ways, and its idle timeout still works.
  socket.write('pong')
  const [reply] = await once(client, 'data') as [Buffer]
  t.equal(reply.toString(), 'pong')
  client.write('ping')
  const [got] = await once(socket, 'data') as [Buffer]
  t.equal(got.toString(), 'ping')
  socket.setTimeout(50)
  await once(socket, 'timeout')
  socket.destroy()
  await once(socket, 'close')
  t.equal(closes, 1, 'its own close listener ran')
})
