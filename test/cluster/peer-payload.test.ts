import type { AddressInfo } from 'node:net'
import Fastify from 'fastify'
import t from 'tap'
import rendezvous from '../../lib/index'
import { PeerTokens } from '../../lib/cluster/peer-token'
import { GO_LINE, MAX_PAYLOAD, readBytes, requestLine } from '../../lib/cluster/peer-wire'
import { socketPairs } from '../helpers/socket-pair'
import { until } from '../helpers/until'
import { openWire, statusOf } from '../helpers/wire'
import { LogLines } from './log-lines'
import { CLUSTER_SECRET, startNode, type TestNode } from './nodes'
import { redisMissing, startRedis } from './redis-server'
import { counter, dialPeer } from './peer-dial'

// What the peer listener reads from a link before it knows the link is a node's (docs/cluster.md, The peer link).

const skip = redisMissing() ?? false

t.test('readBytes takes exactly the declared bytes from small writes and gives back what follows', async t => {
  const [pair] = await socketPairs(t, 1)
  const { near, far } = pair!
  far.socket.setNoDelay(true)
  const reading = readBytes(near, 1000, 5000)
  for (let at = 0; at < 1000; at += 7) {
    far.write(Buffer.alloc(Math.min(7, 1000 - at), at % 251))
    await new Promise(resolve => setImmediate(resolve))
  }
  far.write('GO\r\n')
  const payload = await reading
  t.equal(payload.length, 1000)
  t.ok(payload.equals(Buffer.concat(Array.from({ length: Math.ceil(1000 / 7) }, (_, i) => Buffer.alloc(Math.min(7, 1000 - i * 7), (i * 7) % 251)))), 'in order')
  const rest: Buffer[] = []
  near.on('data', chunk => rest.push(chunk))
  near.resume()
  await until(() => Buffer.concat(rest).toString('latin1') === 'GO\r\n', 2000, 'the line after the payload')
  t.equal((await readBytes(near, 0, 50)).length, 0, 'nothing to read for an empty payload')
  await t.rejects(readBytes(near, 10, 50), /peer link timed out/)
})

const handovers = async (node: TestNode, outcome: string): Promise<number> =>
  counter(await node.app.rendezvous.metrics!.metrics(), 'rendezvous_cluster_handovers_total', outcome)

t.test('the peer listener reads no more than a node sends, and nothing it can refuse from the line', { skip }, async t => {
  const redis = await startRedis(t)
  const log = new LogLines()
  // The default forward timeout: an answer within a second is one given without waiting for the payload.
  const holder = await startNode('b', redis.url, {}, log, { forwardTimeout: 3000 })
  t.teardown(async () => { await holder.close() })
  const { id, secret } = await holder.app.rendezvous.registry.add({})
  const address = holder.app.rendezvous.cluster!.peerAddress!
  const tokens = new PeerTokens(CLUSTER_SECRET)

  t.test('a request declaring more than MAX_PAYLOAD is refused at once, unread', async t => {
    for (const declared of [MAX_PAYLOAD + 1, 1024 * 1024]) {
      const link = await dialPeer(address)
      const started = Date.now()
      link.write(requestLine({ target: 'b', id, token: tokens.create('b', id, Buffer.alloc(0)), length: declared }))
      // The audit's links sent all but one byte of what they declared: it is answered all the same.
      link.write(Buffer.alloc(declared - 1, 0x61))
      await link.untilText('\r\n', 1000)
      t.equal(link.text, `RENDEZVOUS-PEER/2 413 a request over ${MAX_PAYLOAD} bytes\r\n`, `${declared} bytes declared`)
      t.ok(Date.now() - started < 1000, 'answered without waiting out the forward timeout')
      await link.untilClosed(5000)
    }
    t.equal(await handovers(holder, 'too_large'), 2, 'counted')
    t.equal(log.find('refused a peer link: a request over').filter(l => l.level === 40).length, 1, 'one warning; the repeat at debug')
  })

  t.test('exactly MAX_PAYLOAD bytes are read, and delivered after GO', async t => {
    const hidden = await holder.park(id, secret)
    const payload = Buffer.alloc(MAX_PAYLOAD, 0x62)
    payload.write('POST /big HTTP/1.1\r\nHost: h\r\nContent-Length: 200000\r\n\r\n')
    const link = await dialPeer(address)
    link.write(requestLine({ target: 'b', id, token: tokens.create('b', id, payload), length: payload.length }))
    link.write(payload)
    await link.untilText('\r\n')
    t.match(link.text, /^RENDEZVOUS-PEER\/2 200 ok /)
    link.write(GO_LINE)
    await hidden.untilBytes(payload.length)
    t.ok(hidden.received.equals(payload), 'every byte, once')
    link.destroy()
    hidden.destroy()
  })

  t.test('a token that cannot verify is refused from the line, before the payload', async t => {
    const before = await handovers(holder, 'unauthorized')
    const now = Math.floor(Date.now() / 1000)
    const stale = tokens.create('b', id, Buffer.alloc(0), (now - 120) * 1000)
    const early = tokens.create('b', id, Buffer.alloc(0), (now + 120) * 1000)
    // The reason says which way the clock is off: the asking node logs it (forwarded-log.test.ts).
    const cases: Array<[string, string, string]> = [
      [stale, "token made more than 30 s behind this node's clock", 'a token made two minutes ago'],
      [early, "token made more than 30 s ahead of this node's clock", 'a token made two minutes from now'],
      ['not-a-token', 'malformed token', 'a malformed token']
    ]
    for (const [token, reason, label] of cases) {
      const link = await dialPeer(address)
      const started = Date.now()
      link.write(requestLine({ target: 'b', id, token, length: 100_000 }))
      await link.untilText('\r\n', 1000)
      t.equal(link.text, `RENDEZVOUS-PEER/2 401 ${reason}\r\n`, label)
      t.ok(Date.now() - started < 1000, 'no payload was waited for')
      await link.untilClosed(5000)
    }
    const link = await dialPeer(address)
    link.write(requestLine({ target: 'b', id: 'not an id', token: tokens.create('b', id, Buffer.alloc(0)), length: 100_000 }))
    await link.untilText('\r\n', 1000)
    t.equal(link.text, 'RENDEZVOUS-PEER/2 400 malformed request\r\n', 'nor for an ID that cannot be one')
    t.equal(await handovers(holder, 'unauthorized'), before + 3)
    t.match(log.find("refused a peer link: token made more than 30 s behind this node's clock (are the nodes' clocks set?)"), [{ level: 40 }], 'with what to check')
    t.equal(log.find('refused a peer link: malformed token').length, 1, 'the malformed one at debug: a warning a minute per address and cause')
  })

  t.test('a well-formed token of another secret needs the payload its MAC covers', async t => {
    const other = new PeerTokens('another cluster secret, not ours')
    const payload = Buffer.from('GET / HTTP/1.1\r\nHost: h\r\n\r\n')
    const link = await dialPeer(address)
    link.write(requestLine({ target: 'b', id, token: other.create('b', id, payload), length: payload.length }))
    await new Promise(resolve => setTimeout(resolve, 300))
    t.equal(link.text, '', 'nothing answered before the payload')
    link.write(payload)
    await link.untilText('\r\n')
    t.equal(link.text, 'RENDEZVOUS-PEER/2 401 authentication failed\r\n')
  })

  t.test('a payload in small writes is kept in pieces and joined once', async t => {
    const payload = Buffer.alloc(MAX_PAYLOAD, 0x63)
    payload.write('GET / HTTP/1.1\r\nHost: h\r\n\r\n')
    const link = await dialPeer(address)
    // Bytes that Buffer.concat copies in this process meanwhile (the node runs here), large results only.
    let copied = 0
    const concat = Buffer.concat
    Buffer.concat = function counted (list: readonly Uint8Array[], totalLength?: number): Buffer {
      const joined = concat(list, totalLength)
      if (joined.length >= 4096) copied += joined.length
      return joined
    } as typeof Buffer.concat
    try {
      link.write(requestLine({ target: 'b', id, token: tokens.create('b', id, payload), length: payload.length }))
      for (let at = 0; at < payload.length; at += 512) {
        link.write(payload.subarray(at, at + 512))
        await new Promise(resolve => setImmediate(resolve))
      }
      await link.untilText('\r\n')
    } finally {
      Buffer.concat = concat
    }
    t.equal(link.text, 'RENDEZVOUS-PEER/2 404 nothing parked\r\n', 'read whole and authenticated')
    t.ok(copied < 4 * MAX_PAYLOAD, `${copied} bytes copied for a payload of ${MAX_PAYLOAD} in 256 writes`)
  })
})

t.test('a head larger than MAX_PAYLOAD is sent in part before GO and the rest after it, whole and once', { skip }, async t => {
  const redis = await startRedis(t)
  const holder = await startNode('b', redis.url)
  // The asking node accepts heads of up to 256 KiB (Node's maxHeaderSize), more than one request on the link may carry.
  const app = Fastify({ http: { maxHeaderSize: 256 * 1024 } })
  await app.register(rendezvous, { waitTimeout: 3000, redis: redis.url, cluster: { secret: CLUSTER_SECRET, nodeId: 'a', heartbeat: 200, presenceTtl: 1000, resyncInterval: 500 } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => { await app.close(); await holder.close() })
  const { id, secret } = await holder.app.rendezvous.registry.add({})
  const hidden = await holder.park(id, secret)
  await until(() => app.rendezvous.registry.get(id) !== undefined, 5000, 'the ID on the asking node')
  await new Promise(resolve => setTimeout(resolve, 500))

  const big = 'x'.repeat(150_000)
  const client = await openWire((app.server.address() as AddressInfo).port, false)
  client.write(`POST /up HTTP/1.1\r\nHost: h\r\nX-Big: ${big}\r\nAuthorization: Digest username="${id}"\r\nContent-Length: 5\r\n\r\nhello`)
  const expected = `POST /up HTTP/1.1\r\nHost: h\r\nX-Big: ${big}\r\nContent-Length: 5\r\n\r\nhello`
  await hidden.untilBytes(expected.length, 10_000)
  t.equal(hidden.text.length, expected.length, 'no byte twice')
  t.ok(hidden.text === expected, 'the head and the body, in order')
  hidden.write('HTTP/1.1 204 No Content\r\n\r\n')
  await client.untilText('\r\n\r\n')
  t.equal(statusOf(client.text), 204)
  t.equal(await handovers(holder, 'too_large'), 0, 'nothing the holding node had to refuse')
  t.equal(await handovers(holder, 'handed_over'), 1)
  client.destroy()
  hidden.destroy()
})
