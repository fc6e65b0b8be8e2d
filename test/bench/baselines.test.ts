import { once } from 'node:events'
import https from 'node:https'
import type net from 'node:net'
import t, { type Test } from 'tap'
import { startScript, stop } from '../../bench/lib/procs'
import { tlsCert, tlsCertPath, tlsKey, tlsKeyPath } from '../helpers/tls'
import { openWire, relayOnce, statusOf } from '../helpers/wire'

/* The bare Node baselines the targets are read against must carry bytes exactly, or their numbers mean nothing. */

/** Starts a floor relay (floor-relay.ts, or floor-http.ts behind node:http) for one test and resolves with its port. */
async function startFloor (t: Test, script = 'floor-relay.ts'): Promise<number> {
  const floor = await startScript(script)
  t.teardown(() => stop(floor.child))
  return floor.info.port as number
}

const FLOORS = [
  { script: 'floor-relay.ts', what: 'the rendezvous floor pairs the next request with it, head first' },
  { script: 'floor-http.ts', what: 'the floor behind node:http parses both heads, then writes the request head, rebuilt from the parser, down it' }
]

for (const { script, what } of FLOORS) {
  t.test(`${script}: a CONNECT gets its 200; ${what}, and the answer comes back, byte for byte`, async t => {
    const port = await startFloor(t, script)
    const hidden = await openWire(port, false)
    hidden.write('CONNECT uuid:bench-hidden?response=anything HTTP/1.1\r\nHost: x\r\n\r\n')
    await hidden.untilText('\r\n\r\n')
    t.equal(statusOf(hidden.text), 200)
    hidden.drain()

    const client = await openWire(port, false)
    const request = 'GET /x?y=1 HTTP/1.1\r\nHost: x\r\nX-Case: Kept\r\nAuthorization: Digest username="bench-hidden"\r\n\r\n'
    const answer = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'
    await relayOnce(client, hidden, request, answer, '\r\n\r\nok')
    t.equal(hidden.text, request, 'the hidden side got the request head as sent')
    await client.untilClosed()
    t.equal(client.text, answer, 'the answer comes back raw')
    await hidden.untilClosed()
  })
}

t.test('a client that comes before any CONNECT waits for the next one', async t => {
  const port = await startFloor(t)
  const client = await openWire(port, false)
  client.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
  const hidden = await openWire(port, false)
  hidden.write('CONNECT uuid:a?response=b HTTP/1.1\r\n\r\n')
  await hidden.untilText('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
  t.equal(hidden.text, 'HTTP/1.1 200 Connection established\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n')
  hidden.write('pong')
  await client.untilText('pong')
  client.destroy()
  await hidden.untilClosed()
})

t.test('the TLS pipe relay terminates TLS and re-encrypts to an HTTPS backend', async t => {
  const backend = https.createServer({ cert: tlsCert, key: tlsKey }, (req, res) => res.end(`you asked for ${req.url ?? ''}`))
  backend.listen(0, '127.0.0.1')
  await once(backend, 'listening')
  t.teardown(() => backend.close())
  const relay = await startScript('pipe-relay.ts', [String((backend.address() as net.AddressInfo).port), tlsCertPath, tlsKeyPath])
  t.teardown(() => stop(relay.child))

  const client = await openWire(relay.info.port as number, true)
  t.ok((client.socket as unknown as { encrypted?: boolean }).encrypted, 'the client side is TLS')
  client.write('GET /through HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
  await client.untilClosed()
  t.equal(statusOf(client.text), 200)
  t.match(client.text, /\r\n\r\nyou asked for \/through$/)
})
