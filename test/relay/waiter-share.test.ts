import t from 'tap'
import { startRendezvous } from '../helpers/rendezvous'
import { until } from '../helpers/until'
import { tcpFrom, WireClient } from '../helpers/wire'

const ID = 'hub-1'
const request = (path: string): string => `GET ${path} HTTP/1.1\r\nHost: h\r\nAuthorization: Basic ${Buffer.from(`${ID}:x`).toString('base64')}\r\n\r\n`

t.test('one address cannot take every waiting place of an ID, nor every connection its hidden server parks', async t => {
  // maxWaitersPerId 8: one address's share is 2 by default, a quarter.
  const relay = await startRendezvous({ plugin: { maxWaitersPerId: 8, waitTimeout: 5000 } })
  t.teardown(() => relay.close())
  const clients: WireClient[] = []
  t.teardown(() => { for (const c of clients) c.socket.destroy() })
  const from = async (address: string, path: string): Promise<WireClient> => {
    const client = new WireClient(await tcpFrom(relay.port, address))
    clients.push(client)
    client.write(request(path))
    return client
  }

  const hog: WireClient[] = []
  for (let i = 0; i < 8; i++) hog.push(await from('127.0.7.1', `/hog-${i}`))
  await until(() => relay.app.rendezvous.stats().waiting === 6, 3000, 'six of the hog\'s clients waiting')
  for (const refused of hog.slice(6)) {
    await refused.untilClosed()
    t.match(refused.text, /^HTTP\/1\.1 503 Service Unavailable\r\n[^]*\r\nRetry-After: \d+\r\n/, 'the hog\'s seventh and eighth: 503, with Retry-After')
    t.ok(refused.text.endsWith('\r\n\r\ntoo many clients from this address waiting for this ID\n'), 'saying why: the address\'s share')
  }

  const legit = await from('127.0.0.1', '/legit')
  await until(() => relay.app.rendezvous.stats().waiting === 7, 3000, 'the other address\'s client waiting too')

  // The hog's clients came first, yet the second connection parked goes to the other address: sources take turns.
  const hidden = [await relay.park(ID), await relay.park(ID)]
  await Promise.all(hidden.map(async h => await h.untilText('\r\n\r\n')))
  t.match(hidden[0]!.text, /^GET \/hog-0 HTTP\/1\.1\r\n/, 'the first to the hog\'s longest waiting')
  t.match(hidden[1]!.text, /^GET \/legit HTTP\/1\.1\r\n/, 'the second to the other address')
  hidden[1]!.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
  await legit.untilText('\r\n\r\nok')
  t.match(legit.text, /^HTTP\/1\.1 200 OK\r\nContent-Length: 2\r\n\r\nok$/, 'byte for byte')
})

t.test('alone, one address may use an ID\'s places beyond its share; 0 turns the share off', async t => {
  for (const [plugin, waiting] of [[{ maxWaitersPerId: 8 }, 6], [{ maxWaitersPerId: 8, maxWaitersPerAddress: 0 }, 8]] as const) {
    const relay = await startRendezvous({ plugin: { ...plugin, waitTimeout: 5000 } })
    const clients: WireClient[] = []
    for (let i = 0; i < 8; i++) {
      const client = new WireClient(await tcpFrom(relay.port, '127.0.7.2'))
      clients.push(client)
      client.write(request(`/${i}`))
    }
    await until(() => relay.app.rendezvous.stats().waiting === waiting, 3000, `${waiting} waiting`)
    t.equal(relay.app.rendezvous.stats().waiting, waiting, `${JSON.stringify(plugin)}: ${waiting} of 8 wait`)
    for (const c of clients) c.socket.destroy()
    await relay.close()
  }
})
