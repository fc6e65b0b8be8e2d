import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { startAgent, startServe, type Rendezvous } from '../helpers/e2e'
import { blobBytes, sha256, startHiddenSite } from '../helpers/hidden-site'
import { addClusterId, clusterArgs, curl, curlMissing } from './cli-helpers'
import { redisMissing, startRedis } from './redis-server'

// Skipped only where redis-server or curl is not installed; .ci/run installs both.
const skip = redisMissing() ?? curlMissing() ?? false

const SIZE = 24 * 1024 * 1024

t.test('killing node A while it holds splices leaves B\'s and C\'s traffic untouched', { skip }, async t => {
  const scratch = await mkdtemp(join(tmpdir(), 'rendezvous-cluster-'))
  t.teardown(async () => { await rm(scratch, { recursive: true, force: true }) })
  const redis = await startRedis(t)
  const site = await startHiddenSite(t)
  const nodes = await Promise.all([0, 1, 2].map(async () => await startServe(t, { waitTimeout: 5, extraArgs: clusterArgs(redis.url) })))
  const [a, b, c] = nodes as [Rendezvous, Rendezvous, Rendezvous]
  const creds = await addClusterId(t, redis.url)
  // One agent per node for the same ID, so that each node serves its own clients.
  for (const node of nodes) await startAgent(t, node, creds, site.url, { pool: 2, parked: 2 })

  // Slow downloads, so that each node is splicing when A dies.
  const slow = ['--limit-rate', '6M']
  const transfers = [a, b, c].map((node, i) => curl(t, scratch, node, creds, `/blob?size=${SIZE}&seed=slow-${i}`, slow))
  await Promise.all(nodes.map(async node => await node.waitHealth(h => (h.spliced ?? 0) >= 1, 'a splice on every node')))

  await a.proc.kill()
  const [onA, onB, onC] = await Promise.all(transfers)
  t.not(sha256(onA!.body), sha256(blobBytes(SIZE, 'slow-0')), 'the download through A was cut')
  t.equal(onB!.status, 200, onB!.stderr)
  t.equal(sha256(onB!.body), sha256(blobBytes(SIZE, 'slow-1')), 'the download through B finished byte-exact')
  t.equal(onC!.status, 200, onC!.stderr)
  t.equal(sha256(onC!.body), sha256(blobBytes(SIZE, 'slow-2')), 'the download through C finished byte-exact')

  t.test('B and C go on serving new rendezvous', async t => {
    for (const [i, node] of [b, c, b, c].entries()) {
      const got = await curl(t, scratch, node, creds, `/blob?size=4096&seed=after-${i}`)
      t.equal(got.status, 200, got.stderr)
      t.equal(sha256(got.body), sha256(blobBytes(4096, `after-${i}`)))
    }
  })
})
