import t from 'tap'
import { createV1Token } from '../../lib/tokens/v1'
import { SECRET } from '../helpers/fixtures'
import { startRendezvous } from '../helpers/rendezvous'
import { until } from '../helpers/until'

/*
 * A hidden server that crashes as it sends its CONNECT: its reset (or FIN)
 * arrives with the head, and the relay reads it only after the token check
 * parked the connection and handed it to a client already waiting. That
 * client must get the relay's 502, as from any parked connection that was
 * dead without the relay knowing it. On the native data path it got an
 * empty close: the replayed head's write failed before the addon took the
 * pair, and that failure destroyed the client.
 */

const REQUEST = 'GET /x HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="hub-1", realm="rendezvous", nonce="n", uri="/x", response="r"\r\n\r\n'

const paths = [
  { name: 'plain TCP, native data path', tls: false, splice: 'native' as const },
  { name: 'plain TCP, JavaScript data path', tls: false, splice: 'js' as const },
  { name: 'TLS', tls: true, splice: 'js' as const }
]

for (const path of paths) {
  for (const crash of ['reset', 'FIN'] as const) {
    t.test(`${path.name}: a waiting client gets 502 from a hidden server that ${crash === 'reset' ? 'reset' : 'closed'} its connection as it sent its CONNECT`, async t => {
      const relay = await startRendezvous({ tls: path.tls, plugin: { splice: path.splice, waitTimeout: 5000 } })
      t.teardown(relay.close)
      for (let round = 0; round < 3; round++) {
        const client = await relay.open()
        client.write(REQUEST)
        await until(() => relay.app.rendezvous.stats().waiting === 1, 3000, 'the client waits')
        const hidden = await relay.open()
        hidden.socket.on('error', () => {})
        hidden.write(`CONNECT uuid:hub-1?response=${createV1Token('hub-1', SECRET)} HTTP/1.1\r\nHost: h\r\n\r\n`)
        if (crash === 'FIN') hidden.socket.end()
        else if (path.tls) hidden.socket.destroy()
        else hidden.socket.resetAndDestroy()
        await client.untilClosed()
        t.match(client.text, /^HTTP\/1\.1 (502 Bad Gateway|503 Service Unavailable)\r\n/, `round ${round}: a status line, not an empty close`)
        if (client.text.startsWith('HTTP/1.1 502')) t.match(client.text, /\r\nConnection: close\r\n/)
      }
    })
  }
}
