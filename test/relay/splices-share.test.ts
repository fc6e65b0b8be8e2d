import t from 'tap'
import { sample } from '../helpers/prometheus'
import { startRendezvous, untilParked, type TestRendezvous } from '../helpers/rendezvous'
import { until } from '../helpers/until'
import { statusOf, type WireClient } from '../helpers/wire'

/*
 * maxSpliced is shared by every ID, and a pair held open idle keeps its
 * place for good (spliceIdleTimeout is 0 by default). One ID's pairs must
 * not take every place: past its share, its clients get 503 while fewer
 * than a share of places would be left, and the other IDs still relay.
 */

const IDS = ['hub-a', 'hub-b']

interface Pair { client: WireClient, hidden: WireClient }

/** A client for `id` spliced to a hidden server parked for it: resolves once the hidden server has its head. */
async function splice (relay: TestRendezvous, id: string): Promise<Pair> {
  const hidden = await relay.park(id)
  const client = await relay.open()
  client.write(`GET /${id} HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="${id}"\r\n\r\n`)
  await hidden.untilText('\r\n\r\n')
  return { client, hidden }
}

/** A client for `id` that finds a hidden server parked for it and is refused all the same; resolves with what it read before the close. */
async function refused (relay: TestRendezvous, id: string): Promise<{ text: string, parked: WireClient }> {
  const parked = await relay.park(id)
  const client = await relay.open()
  client.write(`GET /${id} HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="${id}"\r\n\r\n`)
  await client.untilClosed()
  return { text: client.text, parked }
}

function closeAll (pairs: Pair[]): void {
  for (const { client, hidden } of pairs) { client.destroy(); hidden.destroy() }
}

async function outcome (relay: TestRendezvous, name: string): Promise<number | undefined> {
  return sample(await relay.app.rendezvous.metrics!.metrics(), `rendezvous_requests_total{outcome="${name}"}`)
}

for (const tls of [false, true]) {
  const scheme = tls ? 'https' : 'http'

  t.test(`${scheme}: one ID's idle pairs cannot take every place; past its share its clients get 503, another ID still relays`, async t => {
    // A share of 2 by default (a quarter of 8).
    const relay = await startRendezvous({ tls, ids: IDS, plugin: { maxSpliced: 8, retryAfter: 9 } })
    t.teardown(relay.close)
    const pairs: Pair[] = []
    t.teardown(() => closeAll(pairs))
    // Alone, A goes past its share while there is room, up to all but a share.
    for (let i = 0; i < 6; i++) pairs.push(await splice(relay, 'hub-a'))
    t.equal(relay.app.rendezvous.stats().spliced, 6)
    const { text, parked } = await refused(relay, 'hub-a')
    t.equal(statusOf(text), 503, 'the 7th would leave less than a share')
    t.match(text, /\r\nRetry-After: 9\r\n/i)
    t.match(text, /\r\nConnection: close\r\n/i)
    t.match(text, /too many relayed connections for this ID/)
    t.equal(parked.text, '', 'the parked connection stays parked, untouched')
    await untilParked(relay, 1)
    t.equal(await outcome(relay, 'splices_share_full'), 1)
    t.equal(sample(await relay.app.rendezvous.metrics!.metrics(), 'rendezvous_refusals_total{side="mobile",reason="splices_share_full"}'), 1)
    parked.destroy()
    // B, under its share, takes the last places.
    for (let i = 0; i < 2; i++) pairs.push(await splice(relay, 'hub-b'))
    t.equal(relay.app.rendezvous.stats().spliced, 8)
    const full = await refused(relay, 'hub-b')
    t.equal(statusOf(full.text), 503, 'every place taken')
    t.match(full.text, /too many relayed connections/)
    t.notMatch(full.text, /for this ID/)
    t.equal(await outcome(relay, 'splices_full'), 1, 'a pool full outright is splices_full')
    full.parked.destroy()
  })
}

t.test('a pair that closes, from either end, gives its ID its place back', async t => {
  const relay = await startRendezvous({ ids: IDS, plugin: { maxSpliced: 4, maxSplicedPerId: 1 } })
  t.teardown(relay.close)
  const pairs: Pair[] = []
  t.teardown(() => closeAll(pairs))
  for (let i = 0; i < 3; i++) pairs.push(await splice(relay, 'hub-a'))
  const first = await refused(relay, 'hub-a')
  t.equal(statusOf(first.text), 503)
  first.parked.destroy()
  // The hidden side ends one, the client another: each frees a place of A's.
  pairs[0].hidden.destroy()
  await until(() => relay.app.rendezvous.stats().spliced === 2, 3000, 'a pair closed by its hidden server')
  pairs.push(await splice(relay, 'hub-a'))
  pairs[1].client.destroy()
  await until(() => relay.app.rendezvous.stats().spliced === 2, 3000, 'a pair closed by its client')
  pairs.push(await splice(relay, 'hub-a'))
  const again = await refused(relay, 'hub-a')
  t.equal(statusOf(again.text), 503, 'and the share binds again at 3')
  again.parked.destroy()
  await untilParked(relay, 0)
  t.same(relay.app.rendezvous.perId().get('hub-a'), { parked: 0, waiting: 0, spliced: 3 })
  t.equal(await outcome(relay, 'splices_share_full'), 2)
})

t.test('maxSplicedPerId 0 turns the share off: one ID may take every place', async t => {
  const relay = await startRendezvous({ ids: IDS, plugin: { maxSpliced: 4, maxSplicedPerId: 0 } })
  t.teardown(relay.close)
  const pairs: Pair[] = []
  t.teardown(() => closeAll(pairs))
  for (let i = 0; i < 4; i++) pairs.push(await splice(relay, 'hub-a'))
  const b = await refused(relay, 'hub-b')
  t.equal(statusOf(b.text), 503)
  b.parked.destroy()
  t.equal(await outcome(relay, 'splices_full'), 1)
  t.equal(await outcome(relay, 'splices_share_full'), undefined)
})
