import t from 'tap'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import net from 'node:net'
import { RendezvousAgent } from '../../lib/agent/agent'
import { SECRET } from '../helpers/fixtures'
import { startRendezvous, untilParked } from '../helpers/rendezvous'
import { tlsCert } from '../helpers/tls'

// The agent behind the real relay, where the fake rendezvous of the other tests cannot show what the relay's splice does.
const ID = 'hub-1'

for (const secure of [true, false]) {
  const scheme = secure ? 'https' : 'http'
  t.test(`${scheme} relay: a mobile client that half-closes after its request gets all of a large answer`, async (t) => {
    const relay = await startRendezvous({ tls: secure, ids: [ID] })
    t.teardown(() => relay.close())
    const body = randomBytes(200_000)
    const answer = Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`), body])
    // Reads the request to EOF, then answers and closes: the agent's FIN follows the answer at once.
    const local = net.createServer({ allowHalfOpen: true }, (s) => {
      s.resume()
      s.on('end', () => s.end(answer))
    })
    local.listen(0, '127.0.0.1')
    await once(local, 'listening')
    t.teardown(() => local.close())
    const to = `http://127.0.0.1:${(local.address() as net.AddressInfo).port}`
    const agent = new RendezvousAgent({ url: `${scheme}://127.0.0.1:${relay.port}`, id: ID, secret: SECRET, to, ca: secure ? tlsCert : undefined, pool: 1 })
    t.teardown(() => agent.close())
    await agent.start()
    // With TLS, the tail of the answer was lost in most exchanges: several, to see it.
    for (let i = 0; i < 5; i++) {
      await untilParked(relay, 1)
      const wire = await relay.open(true)
      wire.write(`GET /big HTTP/1.1\r\nHost: x\r\nAuthorization: Basic ${Buffer.from(`${ID}:x`).toString('base64')}\r\nConnection: close\r\n\r\n`)
      wire.socket.end()
      await wire.until(c => c.ended, 10_000, 'the end of the answer')
      t.equal(wire.received.length, answer.length, `exchange ${i}: all of the answer`)
      t.ok(wire.received.equals(answer), `exchange ${i}: byte for byte`)
      wire.destroy()
    }
  })
}
