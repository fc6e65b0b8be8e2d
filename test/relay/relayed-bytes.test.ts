import t from 'tap'
import { Registry } from 'prom-client'
import { startRendezvous } from '../helpers/rendezvous'
import { until } from '../helpers/until'

// rendezvous_relayed_bytes_total counts the replayed head, and counts bytes while they flow,
// so a long-lived splice (a WebSocket) shows its traffic before it closes.

const HEAD = 'GET /live HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="hub-1"\r\n\r\n'
// What reaches the hidden server: the head without its Authorization line.
const FORWARDED = 'GET /live HTTP/1.1\r\nHost: h\r\n\r\n'

async function relayedBytes (registry: Registry): Promise<{ toHidden: number, toClient: number }> {
  const metric = await registry.getSingleMetric('rendezvous_relayed_bytes_total')?.get()
  const value = (direction: string): number => metric?.values.find(v => v.labels.direction === direction)?.value ?? 0
  return { toHidden: value('to_hidden'), toClient: value('to_client') }
}

for (const tls of [false, true]) {
  t.test(`${tls ? 'https' : 'http'}: relayed bytes`, async t => {
    const metrics = new Registry()
    const relay = await startRendezvous({ tls, plugin: { metrics } })
    t.teardown(relay.close)

    const hidden = await relay.park('hub-1')
    const client = await relay.open()
    client.write(HEAD)
    await hidden.untilText('\r\n\r\n')
    t.equal(hidden.text, FORWARDED, 'the head arrived without Authorization')
    t.same(await relayedBytes(metrics), { toHidden: FORWARDED.length, toClient: 0 }, 'a GET relayed counts its head, while the splice is open')

    hidden.write('HTTP/1.1 101 Switching Protocols\r\n\r\n' + 'x'.repeat(1000))
    await client.untilBytes(1036)
    client.write('y'.repeat(500))
    await hidden.untilBytes(FORWARDED.length + 500)
    // The native path's thread counts a chunk once its write returns, a moment after the peer may have read it.
    const live = { toHidden: FORWARDED.length + 500, toClient: 1036 }
    await until(async () => JSON.stringify(await relayedBytes(metrics)) === JSON.stringify(live), 2000, 'the live count').catch(() => {})
    t.same(await relayedBytes(metrics), live, 'bytes show up before the splice ends')
    t.same(await relayedBytes(metrics), { toHidden: FORWARDED.length + 500, toClient: 1036 }, 'a second scrape counts nothing twice')

    client.write('z'.repeat(24))
    await hidden.untilBytes(FORWARDED.length + 524)
    client.destroy()
    await hidden.untilClosed()
    // The hidden side sees the close before the relay has run its own close handlers.
    await until(async () => (await relayedBytes(metrics)).toHidden === FORWARDED.length + 524, 2000, 'the last bytes to be counted')
    t.same(await relayedBytes(metrics), { toHidden: FORWARDED.length + 524, toClient: 1036 }, 'the rest is counted once the splice ends')
  })
}
