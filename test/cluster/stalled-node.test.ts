import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import https from 'node:https'
import t, { type Test } from 'tap'
import { startCli, type Proc } from '../helpers/cli'
import { tlsCert, tlsCertPath, tlsKeyPath } from '../helpers/tls'
import { until } from '../helpers/until'
import { openWire, statusOf, type WireClient } from '../helpers/wire'
import { createV1Token } from '../../lib/tokens/v1'
import { Redis } from 'ioredis'
import { clusterArgs } from './cli-helpers'
import { startNode, type TestNode } from './nodes'
import { redisMissing, startRedis } from './redis-server'

// A node stopped (SIGSTOP, a machine swapping) while another asks it for a parked connection: when it runs again it
// finds every link that node opened meanwhile, most of them given up. One request must reach a hidden server at
// most once, and never after its client was told 503.

const skip = redisMissing() ?? false

const HEAD = 'POST /pay?once HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="ID"\r\nContent-Length: 6\r\n\r\n'
const DELIVERED = 'POST /pay?once HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\n\r\nabcdef'

interface Holder { proc: Proc, port: number, pid: number, parked: () => Promise<number>, metrics: () => Promise<string> }

/** Node B, the one that holds the parked connections: a process of its own, so that it can be stopped. Not under the watchdog, whose pid is not the node's. */
async function startHolder (t: Test, redisUrl: string, dataDir: string): Promise<Holder> {
  const proc = startCli(t, ['serve', '--port', '0', '--data-dir', dataDir, '--tls-cert', tlsCertPath, '--tls-key', tlsKeyPath, '--log-level', 'info', ...clusterArgs(redisUrl)], { watchdog: false })
  // A stopped process ignores SIGTERM: the teardown must find it running.
  t.teardown(() => { if (!proc.done()) proc.child.kill('SIGCONT') })
  const port = Number((await proc.waitFor(/listening on https:\/\/127\.0\.0\.1:(\d+)\//, 20_000))[1])
  const get = async (path: string): Promise<string> => await new Promise((resolve, reject) => {
    https.get(`https://127.0.0.1:${port}${path}`, { ca: tlsCert, agent: false, timeout: 5000 }, res => {
      let body = ''
      res.setEncoding('utf8').on('data', (chunk: string) => { body += chunk }).on('end', () => resolve(body))
    }).on('error', reject)
  })
  return {
    proc,
    port,
    pid: proc.child.pid!,
    parked: async () => (JSON.parse(await get('/healthz')) as { parked?: number }).parked ?? 0,
    metrics: async () => await get('/metrics')
  }
}

async function parkOn (holder: Holder, id: string, secret: string): Promise<WireClient> {
  const wire = await openWire(holder.port, true)
  wire.write(`CONNECT uuid:${id}?response=${createV1Token(id, secret)} HTTP/1.1\r\nHost: h\r\n\r\n`)
  await wire.untilText('\r\n\r\n')
  if (statusOf(wire.text) !== 200) throw new Error(`park refused: ${wire.text}`)
  wire.drain()
  return wire
}

interface Setup { asker: TestNode, holder: Holder, hidden: WireClient[], id: string }

async function setUp (t: Test, waitTimeout: number): Promise<Setup> {
  const scratch = await mkdtemp(join(tmpdir(), 'rendezvous-stalled-'))
  t.teardown(async () => { await rm(scratch, { recursive: true, force: true }) })
  const redis = await startRedis(t)
  // A gives up on a node after 1 s and asks again 250 ms later, with a new link each time.
  const asker = await startNode('a', redis.url, { waitTimeout }, undefined, { forwardTimeout: 1000, retryInterval: 250 })
  t.teardown(async () => { await asker.close() })
  const { id, secret } = await asker.app.rendezvous.registry.add({})
  const holder = await startHolder(t, redis.url, join(scratch, 'b'))
  t.teardown(() => { if (!t.passing()) t.comment(`holder output:\n${holder.proc.output()}`) })
  await until(async () => {
    try {
      await parkOn(holder, id, secret).then(w => w.destroy())
      return true
    } catch { return false }
  }, 10_000, 'the ID known on the holder')
  await until(async () => await holder.parked() === 0, 5000, 'the probe gone')
  const hidden: WireClient[] = []
  for (let i = 0; i < 4; i++) hidden.push(await parkOn(holder, id, secret))
  t.teardown(() => { for (const h of hidden) h.destroy() })
  await until(async () => await holder.parked() === 4, 5000, 'four parked on the holder')
  // The asker must see them in Redis before the holder stops, or it would not ask it at all.
  const raw = new Redis(redis.url)
  t.teardown(() => raw.disconnect())
  await until(async () => Object.values(await raw.hgetall(`rendezvous:parked:${id}`)).includes('4'), 5000, 'the holder\'s four on the map')
  return { asker, holder, hidden, id }
}

function counter (text: string, outcome: string): number {
  const m = new RegExp(`^rendezvous_cluster_handovers_total\\{outcome="${outcome}"\\} (\\d+)$`, 'm').exec(text)
  return m === null ? 0 : Number(m[1])
}

const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

t.test('a holding node that resumes while the client still waits delivers the request once, byte for byte', { skip }, async t => {
  const { asker, holder, hidden, id } = await setUp(t, 10_000)
  process.kill(holder.pid, 'SIGSTOP')
  let stopped = true
  t.teardown(() => { if (stopped) process.kill(holder.pid, 'SIGCONT') })
  const client = await asker.open()
  client.write(HEAD.replace('"ID"', `"${id}"`) + 'abc')
  await sleep(1200)
  // Part of the body comes while the client waits: it must follow the head, once.
  client.write('def')
  // Long enough for the asker to give up on two links and open a third.
  await sleep(1800)
  process.kill(holder.pid, 'SIGCONT')
  stopped = false
  await Promise.race(hidden.map(async h => await h.untilText('abcdef', 10_000).catch(() => {})))
  const served = hidden.filter(h => h.received.length > 0)
  t.equal(served.length, 1, 'one hidden connection received the request')
  t.equal(served[0]?.text, DELIVERED, 'the head without Authorization, then the whole body, once')
  served[0]?.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\npaid')
  await client.untilText('paid', 5000)
  t.equal(statusOf(client.text), 200)
  t.equal(client.text, 'HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\npaid')
  // The links the asker gave up on were answered 200 too, late: their connections must stay untouched.
  await sleep(1500)
  t.same(hidden.filter(h => h.received.length > 0).map(h => h.text), [DELIVERED], 'no copy anywhere else, even later')
  t.equal(hidden.filter(h => h.closed).length, 0, 'the other connections are still open')
  await until(async () => await holder.parked() === 3, 5000, 'the three unused back in the lot')
  const metrics = await holder.metrics()
  t.equal(counter(metrics, 'handed_over'), 1, 'one handover')
  t.ok(counter(metrics, 'declined') >= 1, `the links given up were declined (${counter(metrics, 'declined')})`)
  served[0]?.destroy()
  client.destroy()
})

t.test('a holding node that resumes after the client got 503 delivers nothing', { skip }, async t => {
  const { asker, holder, hidden, id } = await setUp(t, 2000)
  process.kill(holder.pid, 'SIGSTOP')
  let stopped = true
  t.teardown(() => { if (stopped) process.kill(holder.pid, 'SIGCONT') })
  const client = await asker.open()
  client.write(HEAD.replace('"ID"', `"${id}"`) + 'abcdef')
  await client.untilClosed(10_000)
  t.equal(statusOf(client.text), 503, 'the client was told 503 after its wait')
  await sleep(500)
  process.kill(holder.pid, 'SIGCONT')
  stopped = false
  await sleep(2500)
  t.same(hidden.map(h => h.text), ['', '', '', ''], 'no hidden connection received anything')
  t.equal(hidden.filter(h => h.closed).length, 0, 'all four are still open')
  await until(async () => await holder.parked() === 4, 5000, 'all four back in the lot')
  const metrics = await holder.metrics()
  t.equal(counter(metrics, 'handed_over'), 0, 'nothing handed over')
  t.ok(counter(metrics, 'declined') >= 1, `the late links were declined (${counter(metrics, 'declined')})`)
  // The connections that went back serve the next client as usual.
  const next = await asker.open()
  next.write(`GET /next HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="${id}"\r\n\r\n`)
  await until(() => hidden.some(h => h.text.includes('\r\n\r\n')), 5000, 'the next request delivered')
  const got = hidden.filter(h => h.received.length > 0)
  t.same(got.map(h => h.text), ['GET /next HTTP/1.1\r\nHost: h\r\n\r\n'])
  got[0]?.write('HTTP/1.1 204 No Content\r\n\r\n')
  await next.untilText('\r\n\r\n')
  t.equal(statusOf(next.text), 204)
  next.destroy()
})
