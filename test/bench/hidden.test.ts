import { once } from 'node:events'
import type net from 'node:net'
import tls from 'node:tls'
import t from 'tap'
import { startScript, stop } from '../../bench/lib/procs'
import { generateSecret } from '../../lib/registry/ids'
import { tlsCert, tlsKey } from '../helpers/tls'
import { until } from '../helpers/until'

/* The bench's hidden server parks over TLS and resumes the session for its replacements, like the agent and like nginx's upstream. */

t.test('replacement parked connections resume the TLS session', async t => {
  const accepted: Array<{ socket: tls.TLSSocket, resumed: boolean }> = []
  // Stands in for the relay's hidden side: answers every CONNECT 200 and notes whether the handshake was resumed.
  const relay = tls.createServer({ cert: tlsCert, key: tlsKey }, socket => {
    const entry = { socket, resumed: socket.isSessionReused() }
    socket.on('error', () => {})
    socket.once('data', () => { socket.write('HTTP/1.1 200 OK\r\n\r\n'); accepted.push(entry) })
  })
  relay.listen(0, '127.0.0.1')
  await once(relay, 'listening')
  t.teardown(() => { for (const a of accepted) a.socket.destroy(); relay.close() })
  const port = (relay.address() as net.AddressInfo).port
  const config = { relay: `https://127.0.0.1:${port}`, ids: ['bench-hidden'], secret: generateSecret(), pool: 2, dialing: 2 }
  const hidden = await startScript('hidden.ts', [JSON.stringify(config)])
  t.teardown(() => stop(hidden.child))

  await until(() => accepted.length >= 2, 20_000, 'the first two parked connections')
  t.equal(accepted[0]!.resumed, false, 'the first makes a full handshake')
  // Parked connections that leave unused are replaced.
  for (const a of accepted.slice(0, 2)) a.socket.destroy()
  await until(() => accepted.length >= 4, 20_000, 'two replacements')
  t.same(accepted.slice(2, 4).map(a => a.resumed), [true, true], 'both replacements resumed the session')
})
