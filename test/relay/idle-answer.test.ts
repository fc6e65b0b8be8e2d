import t from 'tap'
import { Writable } from 'node:stream'
import { Registry as PromRegistry } from 'prom-client'
import { nativeSplicer } from '../../lib/relay/native-addon'
import { splice as spliceSockets } from '../../lib/relay/splice'
import { startRendezvous, untilParked, type TestRendezvous } from '../helpers/rendezvous'
import { sample } from '../helpers/prometheus'
import { socketPair } from '../helpers/socket-pair'
import { until } from '../helpers/until'
import type { WireClient } from '../helpers/wire'

/*
 * A hidden server that takes a request and stays silent until the idle
 * timeout (spliceIdleTimeout) ends the pair: before its first byte the
 * client gets a 504 in the relay's refusal form, then a lingering close,
 * rather than an empty close. Past the first byte the pipe stays
 * byte-exact. Through the whole relay on every data path (plain TCP native
 * where the addon is built, JavaScript, TLS), and the splice itself.
 */

const BODY = 'the hidden server did not answer before the idle timeout\n'
const HEAD_504 = 'HTTP/1.1 504 Gateway Timeout\r\nContent-Type: text/plain; charset=utf-8\r\n' +
  `Content-Length: ${Buffer.byteLength(BODY)}\r\nConnection: close\r\n\r\n`
const ANSWER_504 = HEAD_504 + BODY
const IDLE_MS = 300
const request = (method = 'GET'): string => `${method} /status HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="hub-1"\r\n\r\n`
const REPLAYED = 'GET /status HTTP/1.1\r\nHost: h\r\n\r\n'

type Test = Parameters<Parameters<typeof t.test>[0]>[0]
interface LogLine { msg: string, end?: string, toClient?: number }
interface Relay { relay: TestRendezvous, logs: LogLine[], registry: PromRegistry }

async function startRelay (t: Test, tls: boolean, splice: 'native' | 'js'): Promise<Relay> {
  const logs: LogLine[] = []
  const stream = new Writable({ write (chunk: Buffer, _enc, done) { logs.push(JSON.parse(chunk.toString())); done() } })
  const registry = new PromRegistry()
  const relay = await startRendezvous({ tls, plugin: { splice, metrics: registry, spliceIdleTimeout: IDLE_MS }, fastify: { logger: { level: 'info', stream } } })
  t.teardown(relay.close)
  return { relay, logs, registry }
}

/** A parked hidden server that does `onRequest` when the replayed request reaches it, and nothing else. */
async function parkSilent (relay: TestRendezvous, onRequest: (hidden: WireClient) => void = () => {}): Promise<WireClient> {
  const hidden = await relay.park('hub-1', undefined, true)
  hidden.socket.once('data', () => onRequest(hidden))
  await untilParked(relay, 1)
  return hidden
}

async function relayClosed (logs: LogLine[]): Promise<LogLine> {
  await until(() => logs.some(l => l.msg === 'relay closed'), 5000, 'the relay closed line')
  return logs.find(l => l.msg === 'relay closed')!
}

const paths: Array<{ name: string, tls: boolean, splice: 'native' | 'js' }> = [
  { name: 'plain TCP, native data path', tls: false, splice: 'native' },
  { name: 'plain TCP, JavaScript data path', tls: false, splice: 'js' },
  { name: 'TLS (JavaScript data path)', tls: true, splice: 'js' }
]
const native = nativeSplicer()
const noNative = 'reason' in native ? `the native splice is not available here (${native.reason})` : false

for (const { name, tls, splice } of paths) {
  t.test(name, { skip: splice === 'native' && noNative }, async t => {
    t.test('a hidden server silent past the idle timeout: the client gets a 504, then the end', async t => {
      const { relay, logs, registry } = await startRelay(t, tls, splice)
      const hidden = await parkSilent(relay)
      const client = await relay.open(true)
      const sent = Date.now()
      client.write(request())
      await client.until(c => c.ended, 5000, 'the end')
      t.ok(Date.now() - sent >= IDLE_MS - 50, 'not before the idle timeout')
      t.equal(client.text, ANSWER_504, 'the 504, byte for byte, and nothing else')
      // Half-open, it closes once it ends its own side too: the relay lingers for that, as after any refusal.
      client.socket.end()
      await client.untilClosed()
      t.ok(hidden.text.startsWith('GET /status'), 'the request had reached the hidden server')
      t.match(await relayClosed(logs), { end: 'idle', toClient: 0 }, 'the relay closed line: an idle end, the 504 not counted as relayed')
      t.equal(sample(await registry.metrics(), 'rendezvous_splices_total{end="idle"}'), 1, 'counted as idle')
      t.equal(sample(await registry.metrics(), `rendezvous_splice_paths_total{path="${splice}"}`), 1, `on the ${splice} data path`)
    })

    t.test('a HEAD request\'s 504 has the same head and no body', async t => {
      const { relay } = await startRelay(t, tls, splice)
      await parkSilent(relay)
      const client = await relay.open(true)
      client.write(request('HEAD'))
      await client.until(c => c.ended, 5000, 'the end')
      t.equal(client.text, HEAD_504)
    })

    t.test('a hidden server that sent one byte, then went silent: the client gets that byte, then the end, and no 504', async t => {
      const { relay, logs, registry } = await startRelay(t, tls, splice)
      await parkSilent(relay, hidden => hidden.write('H'))
      const client = await relay.open(true)
      client.write(request())
      await client.until(c => c.ended || c.closed, 5000, 'the end')
      t.equal(client.text, 'H', 'the byte, and nothing after it')
      t.match(await relayClosed(logs), { end: 'idle', toClient: 1 })
      t.equal(sample(await registry.metrics(), 'rendezvous_splices_total{end="idle"}'), 1)
    })
  })
}

// The splice itself, on loopback pairs: `near` is the relay's end, `far` the peer's.
for (const path of ['native', 'js'] as const) {
  const skip = path === 'native' && noNative

  t.test(`splice (${path}): the 504 is the relay's own bytes, not counted as relayed, and the end stays idle`, { skip }, async t => {
    const client = await socketPair(t)
    const hidden = await socketPair(t)
    const pair = spliceSockets(client.near, hidden.near, { idleTimeout: IDLE_MS, path, lingerTimeout: 2000, first: [Buffer.from(REPLAYED)], unanswered: {} })
    t.equal(pair.path, path)
    await hidden.far.untilText(REPLAYED)
    await client.far.until(c => c.ended, 5000, 'the end')
    t.equal(client.far.text, ANSWER_504)
    t.match(await pair.done, { end: 'idle', toHidden: REPLAYED.length, toClient: 0, lingering: true })
    await hidden.far.until(c => c.ended || c.closed, 5000, 'the hidden side closed')
  })

  t.test(`splice (${path}): a node relaying for another (no unanswered option) just closes an idle pair`, { skip }, async t => {
    const client = await socketPair(t)
    const hidden = await socketPair(t)
    const pair = spliceSockets(client.near, hidden.near, { idleTimeout: IDLE_MS, path, lingerTimeout: 2000, first: [Buffer.from(REPLAYED)] })
    await hidden.far.untilText(REPLAYED)
    await client.far.until(c => c.ended || c.closed, 5000, 'the end')
    t.equal(client.far.text, '', 'nothing: the other node answers its own client')
    t.match(await pair.done, { end: 'idle', toClient: 0 })
    t.notOk((await pair.done).lingering, 'both sockets destroyed, as before')
  })

  t.test(`splice (${path}): a hidden server that reads nothing of a large request: the client still gets the 504`, { skip }, async t => {
    const client = await socketPair(t)
    const hidden = await socketPair(t)
    // More than loopback's buffers take: the replayed bytes are still being written when the timer fires.
    hidden.far.socket.pause()
    const big = Buffer.alloc(64 * 1024 * 1024, 'x')
    const pair = spliceSockets(client.near, hidden.near, { idleTimeout: IDLE_MS, path, lingerTimeout: 2000, first: [Buffer.from(REPLAYED), big], unanswered: {} })
    await client.far.until(c => c.ended, 5000, 'the end')
    t.equal(client.far.text, ANSWER_504)
    t.match(await pair.done, { end: 'idle', toClient: 0, lingering: true })
  })
}
