import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { buildProblem } from '../helpers/cli'
import { openWire, statusOf, type WireClient } from '../helpers/wire'
import { addClusterId, startNodeProcess } from './cli-helpers'
import { rendezvousRequest, startNode } from './nodes'
import { redisMissing, startRedis } from './redis-server'

// A client waiting on a cluster node for an ID parked nowhere is asked for on
// the other nodes again and again. A shutdown must end that wait as it ends a
// wait on a single node: 503 with Retry-After at once, never a silent close.

const skip = redisMissing() ?? false

async function waitingClient (open: () => Promise<WireClient>, id: string): Promise<WireClient> {
  const client = await open()
  client.write(rendezvousRequest(id).sent)
  // Long enough for the node to have asked the others several times (retryInterval 250 ms).
  await new Promise(resolve => setTimeout(resolve, 800))
  if (client.received.length > 0 || client.closed) throw new Error(`the client was answered before the shutdown: ${client.text}`)
  return client
}

function assertShuttingDown (t: Test, client: WireClient, afterMs: number): void {
  t.equal(statusOf(client.text), 503, `503 (got ${JSON.stringify(client.text.split('\r\n')[0])})`)
  t.match(client.text, /\r\nRetry-After: \d+\r\n/, 'with Retry-After')
  t.match(client.text, /shutting down/, 'saying why')
  t.ok(afterMs < 1500, `within about a second of the shutdown (${afterMs} ms)`)
}

for (const waitTimeout of [10_000, 30_000]) {
  t.test(`close() answers a client waiting for an ID parked nowhere at once (wait timeout ${waitTimeout / 1000} s)`, { skip }, async t => {
    const redis = await startRedis(t)
    const a = await startNode('a', redis.url, { waitTimeout, closeGracePeriod: 5000 })
    const b = await startNode('b', redis.url, { waitTimeout })
    t.teardown(async () => { await b.close() })
    const { id } = await a.app.rendezvous.registry.add()
    const client = await waitingClient(a.open, id)
    const started = Date.now()
    const closed = a.close()
    await client.untilClosed(waitTimeout + 5000)
    assertShuttingDown(t, client, Date.now() - started)
    await closed
    t.match(await a.app.rendezvous.metrics!.metrics(), /rendezvous_requests_total\{outcome="shutting_down"\} 1\n/, 'counted as shutting_down')
    t.match(await b.app.rendezvous.metrics!.metrics(), /rendezvous_cluster_redis_up 1\n/, 'the other node is unaffected')
  })
}

const build = buildProblem(t)
t.test('SIGTERM on serve --redis answers a client waiting for an ID parked nowhere with 503 at once', { skip: skip || (build ?? false) }, async t => {
  const redis = await startRedis(t)
  const scratch = await mkdtemp(join(tmpdir(), 'rendezvous-close-waiter-'))
  t.teardown(async () => { await rm(scratch, { recursive: true, force: true }) })
  const { id } = await addClusterId(t, redis.url)
  for (const waitTimeout of [10, 30]) {
    const node = await startNodeProcess(t, redis.url, join(scratch, String(waitTimeout)), ['--wait-timeout', String(waitTimeout)])
    const client = await waitingClient(async () => await openWire(node.port, true), id)
    const started = Date.now()
    const exited = node.proc.stop('SIGTERM')
    await client.untilClosed(waitTimeout * 1000 + 5000)
    assertShuttingDown(t, client, Date.now() - started)
    t.same(await exited, { code: 0, signal: null }, 'serve exits cleanly')
  }
})
