import t from 'tap'
import { once } from 'node:events'
import { connect as netConnect } from 'node:net'
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls'
import { Writable } from 'node:stream'
import { Registry as PromRegistry } from 'prom-client'
import { createV1Token } from '../../lib/tokens/v1'
import { nativeSplicer } from '../../lib/relay/native-addon'
import { startRendezvous, untilParked, type TestRendezvous } from '../helpers/rendezvous'
import { SECRET } from '../helpers/fixtures'
import { tlsCert } from '../helpers/tls'
import { sample } from '../helpers/prometheus'
import { until } from '../helpers/until'
import { WireClient } from '../helpers/wire'
import { splice as spliceSockets } from '../../lib/relay/splice'
import { socketPair } from '../helpers/socket-pair'

/*
 * A parked hidden-server connection that turns out dead when a client's
 * request is written into it (a rebooted host's kernel answers with a
 * reset), or that closes without a byte: the client gets a 502 in the
 * relay's refusal form, not an empty close. Once the hidden server sent a
 * byte, the pipe stays byte-exact. Through the whole relay, on every data
 * path: plain TCP native (where the addon is built) and JavaScript, and TLS.
 */

const BODY = 'the hidden server closed the connection before it answered\n'
const HEAD_502 = 'HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain; charset=utf-8\r\n' +
  `Content-Length: ${Buffer.byteLength(BODY)}\r\nConnection: close\r\n\r\n`
const ANSWER_502 = HEAD_502 + BODY
const request = (method = 'GET'): string => `${method} /status HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="hub-1"\r\n\r\n`
const REPLAYED = 'GET /status HTTP/1.1\r\nHost: h\r\n\r\n'

type Test = Parameters<Parameters<typeof t.test>[0]>[0]
interface Peer { wire: WireClient, rst: () => void }
interface LogLine { msg: string, end?: string, toClient?: number, outcome?: string }
interface Relay { relay: TestRendezvous, logs: LogLine[], registry: PromRegistry }

/** A connection to the relay whose TCP socket can be reset, under TLS too (a TLS socket cannot reset itself). */
async function openPeer (relay: TestRendezvous): Promise<Peer> {
  const raw = netConnect({ port: relay.port, host: '127.0.0.1', allowHalfOpen: true })
  await once(raw, 'connect')
  const rst = (): void => { raw.resetAndDestroy() }
  if (!relay.tls) return { wire: new WireClient(raw), rst }
  const secure = tlsConnect({ socket: raw, ca: tlsCert, servername: 'localhost', allowHalfOpen: true } as ConnectionOptions)
  await once(secure, 'secureConnect')
  return { wire: new WireClient(secure), rst }
}

/** A parked hidden server that does `onRequest` as soon as the replayed request reaches it. */
async function parkPeer (relay: TestRendezvous, onRequest: (peer: Peer) => void): Promise<Peer> {
  const peer = await openPeer(relay)
  peer.wire.write(`CONNECT uuid:hub-1?response=${createV1Token('hub-1', SECRET)} HTTP/1.1\r\nHost: h\r\n\r\n`)
  await peer.wire.untilText('\r\n\r\n')
  if (peer.wire.text !== 'HTTP/1.1 200 OK\r\n\r\n') throw new Error(`park refused: ${peer.wire.text}`)
  peer.wire.drain()
  peer.wire.socket.once('data', () => onRequest(peer))
  await untilParked(relay, 1)
  return peer
}

async function startRelay (t: Test, tls: boolean, splice: 'native' | 'js'): Promise<Relay> {
  const logs: LogLine[] = []
  const stream = new Writable({ write (chunk: Buffer, _enc, done) { logs.push(JSON.parse(chunk.toString())); done() } })
  const registry = new PromRegistry()
  const relay = await startRendezvous({ tls, plugin: { splice, metrics: registry }, fastify: { logger: { level: 'info', stream } } })
  t.teardown(relay.close)
  return { relay, logs, registry }
}

async function relayClosed (logs: LogLine[]): Promise<LogLine> {
  await until(() => logs.some(l => l.msg === 'relay closed'), 5000, 'the relay closed line')
  return logs.find(l => l.msg === 'relay closed')!
}

async function splicesEnded (registry: PromRegistry, end: string): Promise<number | undefined> {
  return sample(await registry.metrics(), `rendezvous_splices_total{end="${end}"}`)
}

const paths: Array<{ name: string, tls: boolean, splice: 'native' | 'js' }> = [
  { name: 'plain TCP, native data path', tls: false, splice: 'native' },
  { name: 'plain TCP, JavaScript data path', tls: false, splice: 'js' },
  { name: 'TLS (JavaScript data path)', tls: true, splice: 'js' }
]
const native = nativeSplicer()

for (const { name, tls, splice } of paths) {
  const skip = splice === 'native' && 'reason' in native ? `the native splice is not available here (${native.reason})` : false

  t.test(name, { skip }, async t => {
    t.test('a parked connection that resets when the request arrives: the client gets a 502, then the end', async t => {
      const { relay, logs, registry } = await startRelay(t, tls, splice)
      const hidden = await parkPeer(relay, peer => peer.rst())
      const client = await openPeer(relay)
      client.wire.write(request())
      await client.wire.until(c => c.ended, 5000, 'the end')
      t.equal(client.wire.text, ANSWER_502, 'the 502, byte for byte, and nothing else')
      // Half-open, it closes once it ends its own side too: the relay lingers for that, as after any refusal.
      client.wire.socket.end()
      await client.wire.untilClosed()
      t.ok(hidden.wire.text.startsWith('GET /status'), 'the request had reached the hidden server')
      const line = await relayClosed(logs)
      t.match(line, { end: 'unanswered', toClient: 0, outcome: 'relayed' }, 'the relay closed line says so')
      t.equal(await splicesEnded(registry, 'unanswered'), 1, 'counted by its end')
      t.equal(sample(await registry.metrics(), `rendezvous_splice_paths_total{path="${splice}"}`), 1, `on the ${splice} data path`)
    })

    t.test('a parked connection that closes (FIN) without a byte: the client gets a 502, then the end', async t => {
      const { relay, logs, registry } = await startRelay(t, tls, splice)
      const hidden = await parkPeer(relay, peer => peer.wire.socket.end())
      const client = await openPeer(relay)
      client.wire.write(request())
      await client.wire.until(c => c.ended, 5000, 'the end')
      t.equal(client.wire.text, ANSWER_502, 'the 502, byte for byte, and nothing else')
      client.wire.socket.end()
      await client.wire.untilClosed()
      await hidden.wire.untilClosed()
      t.equal(hidden.wire.text, REPLAYED, 'the request had reached the hidden server')
      t.match(await relayClosed(logs), { end: 'unanswered', toClient: 0 })
      t.equal(await splicesEnded(registry, 'unanswered'), 1)
    })

    t.test('a HEAD request\'s 502 has the same head and no body', async t => {
      const { relay } = await startRelay(t, tls, splice)
      await parkPeer(relay, peer => peer.wire.socket.end())
      const client = await openPeer(relay)
      client.wire.write(request('HEAD'))
      await client.wire.until(c => c.ended, 5000, 'the end')
      t.equal(client.wire.text, HEAD_502)
    })

    t.test('a client that half-closed after its request still gets the 502', async t => {
      const { relay } = await startRelay(t, tls, splice)
      await parkPeer(relay, peer => { setTimeout(() => peer.wire.socket.end(), 100) })
      const client = await openPeer(relay)
      client.wire.write(request())
      client.wire.socket.end()
      await client.wire.until(c => c.ended, 5000, 'the end')
      t.equal(client.wire.text, ANSWER_502)
    })

    t.test('a hidden server that sends a byte, then resets: the client gets that byte, then the end, and no 502', async t => {
      const { relay, logs, registry } = await startRelay(t, tls, splice)
      await parkPeer(relay, peer => {
        peer.wire.write('H')
        // Once the byte is on its way: a reset sent with it could overtake it inside the relay's kernel.
        setTimeout(() => peer.rst(), 200)
      })
      const client = await openPeer(relay)
      client.wire.write(request())
      await client.wire.until(c => c.ended || c.closed, 5000, 'the end')
      t.equal(client.wire.text, 'H', 'the byte, and nothing after it')
      t.match(await relayClosed(logs), { end: 'error', toClient: 1 })
      t.equal(await splicesEnded(registry, 'unanswered'), undefined, 'no unanswered pair')
    })

    t.test('a hidden server that sends a byte, then closes: unchanged', async t => {
      const { relay, logs } = await startRelay(t, tls, splice)
      await parkPeer(relay, peer => { peer.wire.write('H'); peer.wire.socket.end() })
      const client = await openPeer(relay)
      client.wire.write(request())
      await client.wire.until(c => c.ended, 5000, 'the end')
      t.equal(client.wire.text, 'H')
      client.wire.socket.end()
      t.match(await relayClosed(logs), { end: 'closed', toClient: 1 })
    })

    t.test('a client that left before its hidden server closed is written nothing', async t => {
      const { relay, logs, registry } = await startRelay(t, tls, splice)
      let hiddenPeer: Peer | undefined
      await parkPeer(relay, peer => { hiddenPeer = peer })
      const client = await openPeer(relay)
      client.wire.write(request())
      await until(() => hiddenPeer !== undefined, 5000, 'the request at the hidden server')
      client.rst()
      // The relay sees the client go, and closes the hidden side: there is nobody left to answer.
      await hiddenPeer!.wire.until(c => c.ended || c.closed, 5000, 'the hidden side closed')
      hiddenPeer!.wire.socket.end()
      const line = await relayClosed(logs)
      t.match(line, { end: 'error', toClient: 0 })
      t.equal(await splicesEnded(registry, 'unanswered'), undefined, 'no 502 was counted')
    })
  })
}

// The splice itself, on loopback pairs: `near` is the relay's end, `far` the peer's.
for (const path of ['native', 'js'] as const) {
  const skip = path === 'native' && 'reason' in native ? `the native splice is not available here (${native.reason})` : false

  t.test(`splice (${path}): only a caller that asks for it has its client answered`, { skip }, async t => {
    const client = await socketPair(t)
    const hidden = await socketPair(t)
    const pair = spliceSockets(client.near, hidden.near, { idleTimeout: 0, path, lingerTimeout: 2000, first: [Buffer.from(REPLAYED)] })
    t.equal(pair.path, path)
    await hidden.far.untilText(REPLAYED)
    hidden.far.socket.end()
    await client.far.until(c => c.ended, 5000, 'the FIN passed on')
    t.equal(client.far.text, '', 'a node relaying for another passes the FIN on as it is: the other node answers')
    client.far.socket.end()
    t.match(await pair.done, { end: 'closed', toClient: 0 })
  })

  t.test(`splice (${path}): the 502 is the relay's own bytes, not counted as relayed`, { skip }, async t => {
    const client = await socketPair(t)
    const hidden = await socketPair(t)
    const pair = spliceSockets(client.near, hidden.near, { idleTimeout: 0, path, lingerTimeout: 2000, first: [Buffer.from(REPLAYED)], unanswered: {} })
    await hidden.far.untilText(REPLAYED)
    hidden.far.socket.resetAndDestroy()
    await client.far.until(c => c.ended, 5000, 'the end')
    t.equal(client.far.text, ANSWER_502)
    t.match(await pair.done, { end: 'unanswered', toHidden: REPLAYED.length, toClient: 0, lingering: true })
    t.same(pair.bytes(), { toHidden: REPLAYED.length, toClient: 0 })
  })
}

t.test('splice: a hidden side already closed when the pair begins has not answered either', async t => {
  const client = await socketPair(t)
  const hidden = await socketPair(t)
  hidden.near.destroy()
  const pair = spliceSockets(client.near, hidden.near, { idleTimeout: 0, lingerTimeout: 2000, unanswered: { headOnly: true } })
  await client.far.until(c => c.ended, 5000, 'the end')
  t.equal(client.far.text, HEAD_502, 'a HEAD request\'s 502: the head only')
  t.match(await pair.done, { end: 'unanswered', toClient: 0 })
})
