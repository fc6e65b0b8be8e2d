import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { startCli } from '../helpers/cli'
import { tlsCertPath } from '../helpers/tls'
import { until } from '../helpers/until'
import { blobBytes, sha256, startHiddenSite } from '../helpers/hidden-site'
import { addClusterId, curl, curlMissing, startNodeProcess, type NodeProcess } from './cli-helpers'
import { redisMissing, startRedis } from './redis-server'

// Skipped only where redis-server or curl is not installed; .ci/run installs both.
const skip = redisMissing() ?? curlMissing() ?? false

const SIZE = 24 * 1024 * 1024

t.test('killing node A while it holds splices leaves B\'s and C\'s traffic untouched', { skip }, async t => {
  const scratch = await mkdtemp(join(tmpdir(), 'rendezvous-cluster-'))
  t.teardown(async () => { await rm(scratch, { recursive: true, force: true }) })
  const redis = await startRedis(t)
  const site = await startHiddenSite(t)
  const nodes = await Promise.all([0, 1, 2].map(async i => await startNodeProcess(t, redis.url, join(scratch, `node-${i}`))))
  const [a, b, c] = nodes as [NodeProcess, NodeProcess, NodeProcess]
  const parked = async (node: NodeProcess): Promise<number> => (await node.healthz()).parked ?? 0
  const creds = await addClusterId(t, redis.url)
  // One agent given all three nodes spreads its pool over them, so that each node serves its own clients.
  const servers = nodes.flatMap(node => ['--server', node.url])
  const agent = startCli(t, ['agent', ...servers, '--id', creds.id, '--secret', creds.secret, '--to', site.url, '--ca', tlsCertPath, '--pool', '6'])
  t.teardown(() => { if (!t.passing()) t.comment(`agent output:\n${agent.output()}`) })
  await until(async () => (await Promise.all(nodes.map(parked))).every(n => n === 2), 20_000, 'two parked on every node')

  // Slow downloads, so that each node is splicing when A dies.
  const slow = ['--limit-rate', '6M']
  const transfers = [a, b, c].map((node, i) => curl(t, scratch, node, creds, `/blob?size=${SIZE}&seed=slow-${i}`, slow))
  await until(async () => (await Promise.all(nodes.map(async node => (await node.healthz()).spliced ?? 0))).every(n => n >= 1), 20_000, 'a splice on every node')

  await a.proc.kill()
  const [onA, onB, onC] = await Promise.all(transfers)
  t.not(sha256(onA!.body), sha256(blobBytes(SIZE, 'slow-0')), 'the download through A was cut')
  t.equal(onB!.status, 200, onB!.stderr)
  t.equal(sha256(onB!.body), sha256(blobBytes(SIZE, 'slow-1')), 'the download through B finished byte-exact')
  t.equal(onC!.status, 200, onC!.stderr)
  t.equal(sha256(onC!.body), sha256(blobBytes(SIZE, 'slow-2')), 'the download through C finished byte-exact')

  t.test('the agent parks its whole pool on B and C', async t => {
    await until(async () => await parked(b) + await parked(c) === 6, 20_000, 'six parked on B and C')
    t.pass('re-parked')
  })

  t.test('B and C go on serving new rendezvous', async t => {
    for (const [i, node] of [b, c, b, c].entries()) {
      const got = await curl(t, scratch, node, creds, `/blob?size=4096&seed=after-${i}`)
      t.equal(got.status, 200, got.stderr)
      t.equal(sha256(got.body), sha256(blobBytes(4096, `after-${i}`)))
    }
  })
})
