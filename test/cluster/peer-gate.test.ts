import { connect, type Socket } from 'node:net'
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls'
import t from 'tap'
import type { PeerTlsOptions } from '../../lib/cluster/options'
import { connectionKey, MAX_UNAUTHENTICATED, MAX_UNAUTHENTICATED_PER_ADDRESS, PeerGate } from '../../lib/cluster/peer-gate'
import { PeerTokens } from '../../lib/cluster/peer-token'
import { GO_LINE, requestLine } from '../../lib/cluster/peer-wire'
import { until } from '../helpers/until'
import { WireClient } from '../helpers/wire'
import { LogLines } from './log-lines'
import { makeCa, makeNodeCert } from './peer-certs'
import { CLUSTER_SECRET, startNode, type TestNode } from './nodes'
import { redisMissing, startRedis } from './redis-server'
import { counter } from './peer-dial'

// The limits on peer links still to authenticate (docs/cluster.md, The peer link).

const skip = redisMissing() ?? false

const handovers = async (node: TestNode, outcome: string): Promise<number> =>
  counter(await node.app.rendezvous.metrics!.metrics(), 'rendezvous_cluster_handovers_total', outcome)

/** A TCP link to the peer listener from `from` (any 127/8 address reaches a loopback listener), saying nothing yet. */
async function dial (address: string, from = '127.0.0.1'): Promise<WireClient> {
  const [host, port] = address.split(':')
  const socket: Socket = connect({ port: Number(port), host, localAddress: from })
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject))
  return new WireClient(socket)
}

/** `n` silent links from `from`, each accepted by the listener (none closed or answered a moment later). */
async function holdOpen (address: string, n: number, from = '127.0.0.1'): Promise<WireClient[]> {
  const links = await Promise.all(Array.from({ length: n }, async () => await dial(address, from)))
  await new Promise(resolve => setTimeout(resolve, 100))
  return links
}

const accepted = (links: WireClient[]): boolean => links.every(l => !l.closed && l.received.length === 0)

t.test('links that have not authenticated are limited per address and in all, at accept', { skip }, async t => {
  const redis = await startRedis(t)
  const log = new LogLines()
  const holder = await startNode('b', redis.url, {}, log, { forwardTimeout: 1500 })
  t.teardown(async () => { await holder.close() })
  const { id, secret } = await holder.app.rendezvous.registry.add({})
  const address = holder.app.rendezvous.cluster!.peerAddress!
  const tokens = new PeerTokens(CLUSTER_SECRET)
  const ask = (link: WireClient, payload = Buffer.from('GET / HTTP/1.1\r\nHost: h\r\n\r\n')): void => {
    link.write(requestLine({ target: 'b', id, token: tokens.create('b', id, payload), length: payload.length }))
    link.write(payload)
  }

  // A link that authenticated and was handed a connection no longer counts, however long its exchange lasts.
  // (From an address of its own: one whose link authenticated is another node's, which bursts may come from.)
  const hidden = await holder.park(id, secret)
  const spliced = await dial(address, '127.0.0.60')
  ask(spliced)
  await spliced.untilText('\r\n')
  spliced.write(GO_LINE)
  await hidden.untilText('\r\n\r\n')

  const mine = await holdOpen(address, MAX_UNAUTHENTICATED_PER_ADDRESS)
  t.ok(accepted(mine), `${MAX_UNAUTHENTICATED_PER_ADDRESS} links from one address are read`)
  const refused = await dial(address)
  await refused.untilClosed(5000)
  t.equal(refused.text, 'RENDEZVOUS-PEER/2 503 too many links waiting to authenticate\r\n', 'one more is told why, and closed')
  t.equal(await handovers(holder, 'links_full'), 1, 'counted')
  t.notOk(spliced.closed, 'the exchange under way goes on')

  const other = await dial(address, '127.0.0.2')
  ask(other)
  await other.untilText('\r\n')
  t.equal(other.text, 'RENDEZVOUS-PEER/2 404 nothing parked\r\n', 'another address is served meanwhile')
  other.destroy()

  // Up to the total: seven more addresses with as many each.
  const others: WireClient[] = []
  for (let i = 2; others.length + mine.length < MAX_UNAUTHENTICATED; i++) others.push(...await holdOpen(address, MAX_UNAUTHENTICATED_PER_ADDRESS, `127.0.0.${i}`))
  t.ok(accepted(others), `${MAX_UNAUTHENTICATED} in all are read`)
  const beyond = await dial(address, '127.0.0.100')
  await beyond.untilClosed(5000)
  t.equal(beyond.text, 'RENDEZVOUS-PEER/2 503 too many links waiting to authenticate\r\n', 'one more, from any address, is refused')
  t.equal(await handovers(holder, 'links_full'), 2)
  const lines = log.find('refused a peer link: too many links')
  t.same(lines.map(l => [l.level, l.from]), [[40, '127.0.0.1'], [20, '127.0.0.100']], 'one warning a minute; the repeats at debug')
  t.match(lines[1]?.msg, /too many links in all have not authenticated yet/)

  // The silent links time out (forwardTimeout) and close: their places are free again.
  await until(() => mine.every(l => l.closed), 5000, 'the silent links to be closed')
  await until(() => others.every(l => l.closed), 5000, 'the silent links to be closed')
  const again = await dial(address)
  ask(again)
  await again.untilText('\r\n')
  t.equal(again.text, 'RENDEZVOUS-PEER/2 404 nothing parked\r\n', 'a new link is read again')
  spliced.destroy()
  hidden.destroy()
})

t.test('over TLS: counted from the TCP accept, refused before any handshake, released once authenticated', { skip }, async t => {
  const redis = await startRedis(t)
  const ca = await makeCa('peer gate CA')
  const pair = await makeNodeCert(ca, 'b')
  const peerTls: PeerTlsOptions = { server: { ...pair, ca: ca.cert, requestCert: true, rejectUnauthorized: true }, client: { ...pair, ca: ca.cert } }
  const holder = await startNode('b', redis.url, { cluster: { secret: CLUSTER_SECRET, peerTls } }, undefined, { forwardTimeout: 1500 })
  t.teardown(async () => { await holder.close() })
  const { id, secret } = await holder.app.rendezvous.registry.add({})
  const address = holder.app.rendezvous.cluster!.peerAddress!
  const [host, port] = address.split(':')
  const tokens = new PeerTokens(CLUSTER_SECRET)
  const member: ConnectionOptions = { host, port: Number(port), ...pair, ca: ca.cert, servername: 'peers.rendezvous.test' }

  const hidden = await holder.park(id, secret)
  // tls.connect passes net's options on, though its typings leave localAddress out.
  const fromItsOwnAddress = { ...member, localAddress: '127.0.0.60' }
  const socket = tlsConnect(fromItsOwnAddress)
  await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject))
  const spliced = new WireClient(socket)
  const payload = Buffer.from('GET /tls HTTP/1.1\r\nHost: h\r\n\r\n')
  spliced.write(requestLine({ target: 'b', id, token: tokens.create('b', id, payload), length: payload.length }))
  spliced.write(payload)
  await spliced.untilText('\r\n')
  spliced.write(GO_LINE)
  await hidden.untilText('\r\n\r\n')

  const silent = await holdOpen(address, MAX_UNAUTHENTICATED_PER_ADDRESS)
  t.ok(accepted(silent), 'the authenticated TLS link left its place to others')
  const refused = await dial(address)
  await refused.untilClosed(5000)
  t.equal(refused.received.length, 0, 'closed without a byte: no TLS state, no handshake')
  t.equal(await handovers(holder, 'links_full'), 1)
  t.equal(await handovers(holder, 'tls_refused'), 0, 'not taken for a failed handshake')
  t.notOk(spliced.closed, 'the exchange under way goes on')
  for (const link of silent) link.destroy()
  spliced.destroy()
  hidden.destroy()
})

t.test('an address whose link authenticated is another node: its bursts are held to the total only', async t => {
  const gate = new PeerGate(64, 8)
  let port = 40000
  const fake = (address: string): Socket => ({ remoteAddress: address, remotePort: port++, localAddress: '127.0.0.1', localPort: 9000, once: () => {} }) as unknown as Socket
  const first = fake('10.0.0.2')
  t.equal(gate.admit(first), undefined)
  for (let i = 1; i < 8; i++) t.equal(gate.admit(fake('10.0.0.2')), undefined)
  t.same(gate.admit(fake('10.0.0.2')), { address: '10.0.0.2', limit: 'address' }, 'a 9th link waiting from one address is refused')
  gate.authenticated(connectionKey(first))
  for (let i = 0; i < 20; i++) t.equal(gate.admit(fake('10.0.0.2')), undefined, `a node's burst: link ${i + 9}`)
  t.same(gate.admit(fake('10.0.0.3')), undefined, 'other addresses have their own 8')
  t.equal(gate.waiting, 8 - 1 + 20 + 1)
  const room = 64 - gate.waiting
  for (let i = 0; i < room; i++) t.equal(gate.admit(fake(`10.0.1.${i}`)), undefined)
  t.same(gate.admit(fake('10.0.0.2')), { address: '10.0.0.2', limit: 'total' }, 'the total still applies')
})
