import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { once } from 'node:events'
import { connect as netConnect } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { createV1Token } from '../../lib/tokens/v1'
import { startRendezvous as startRelay, untilParked, type TestRendezvous as Relay } from '../helpers/rendezvous'
import { SECRET } from '../helpers/fixtures'
import { tlsCert } from '../helpers/tls'
import { statusOf, WireClient } from '../helpers/wire'
import { until } from '../helpers/until'

/* Peers that die at the worst moment: the other side must learn of it within a second. */

const AUTH = 'Authorization: Digest username="hub-1"\r\n'

interface Peer { wire: WireClient, rst: () => void }

/** A connection to the relay whose TCP socket can be reset, under TLS too (a TLS socket cannot reset itself). */
async function openPeer (relay: Relay): Promise<Peer> {
  const raw = netConnect({ port: relay.port, host: '127.0.0.1' })
  await once(raw, 'connect')
  const rst = (): void => { raw.resetAndDestroy() }
  if (!relay.tls) return { wire: new WireClient(raw), rst }
  const secure = tlsConnect({ socket: raw, ca: tlsCert, servername: 'localhost' })
  await once(secure, 'secureConnect')
  return { wire: new WireClient(secure), rst }
}

async function parkPeer (relay: Relay): Promise<Peer> {
  const peer = await openPeer(relay)
  peer.wire.write(`CONNECT uuid:hub-1?response=${createV1Token('hub-1', SECRET)} HTTP/1.1\r\nHost: h\r\n\r\n`)
  await peer.wire.untilText('\r\n\r\n')
  if (peer.wire.text !== 'HTTP/1.1 200 OK\r\n\r\n') throw new Error(`park refused: ${peer.wire.text}`)
  peer.wire.drain()
  return peer
}

async function closedWithinOneSecond (t: { ok: (v: boolean, m: string) => void }, side: WireClient, what: string): Promise<void> {
  const started = Date.now()
  await side.untilClosed(3000)
  const ms = Date.now() - started
  t.ok(ms < 1000, `${what} saw the close after ${ms} ms`)
}

for (const tls of [false, true]) {
  const scheme = tls ? 'https' : 'http'

  t.test(`${scheme}: one side dies mid-transfer, the other sees a close within 1 s`, async t => {
    const relay = await startRelay({ tls })
    t.teardown(relay.close)
    const kills: Array<[string, (p: Peer) => void]> = [
      ['close', p => { p.wire.socket.destroy() }],
      ['RST', p => { p.rst() }]
    ]
    for (const [how, kill] of kills) {
      for (const dying of ['hidden', 'client'] as const) {
        const hiddenPeer = await parkPeer(relay)
        const clientPeer = await openPeer(relay)
        const [hidden, client] = [hiddenPeer.wire, clientPeer.wire]
        client.write('POST /upload HTTP/1.1\r\nHost: h\r\n' + AUTH + 'Content-Length: 1000000\r\n\r\n' + 'x'.repeat(50_000))
        await hidden.untilBytes(50_000)
        hidden.write('HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n' + 'y'.repeat(50_000))
        await client.untilBytes(50_000)
        const [victim, survivor] = dying === 'hidden' ? [hiddenPeer, client] : [clientPeer, hidden]
        kill(victim)
        await closedWithinOneSecond(t, survivor, `${how} of the ${dying} side: the other`)
      }
    }
    await untilParked(relay, 0)
    // A client left to a lingering close counts until its own close reaches the relay.
    await until(() => relay.app.rendezvous.stats().spliced === 0, 3000, 'no spliced pair left')
    t.equal(relay.app.rendezvous.stats().spliced, 0, 'no spliced pair is left')
  })

  t.test(`${scheme}: a parked connection closed by its peer is skipped; the client gets the next one`, async t => {
    const relay = await startRelay({ tls, plugin: { waitTimeout: 5000 } })
    t.teardown(relay.close)
    const dead = await relay.park('hub-1')
    const live = await relay.park('hub-1')
    dead.socket.end()
    await untilParked(relay, 1)
    const client = await relay.open()
    client.write('GET /a HTTP/1.1\r\nHost: h\r\n' + AUTH + '\r\n')
    await live.untilText('\r\n\r\n')
    t.equal(live.text, 'GET /a HTTP/1.1\r\nHost: h\r\n\r\n')
    client.destroy()

    // Now while the client is already waiting: the one that dies is skipped, the next one serves.
    const dying = await parkPeer(relay)
    dying.rst()
    await untilParked(relay, 0)
    const waiting = await relay.open()
    waiting.write('GET /b HTTP/1.1\r\nHost: h\r\n' + AUTH + '\r\n')
    while (relay.app.rendezvous.stats().waiting < 1) await sleep(10)
    const next = await relay.park('hub-1')
    await next.untilText('\r\n\r\n')
    next.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext')
    await waiting.untilText('next')
    t.equal(statusOf(waiting.text), 200)
    waiting.destroy()
  })
}
