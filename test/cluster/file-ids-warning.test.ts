import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import t from 'tap'
import { buildProblem, CLI_MAIN, runCli, startCli } from '../helpers/cli'
import { clusterArgs } from './cli-helpers'
import { redisMissing, startRedis } from './redis-server'

/*
 * A cluster node serves the IDs in Redis only. One started over a data dir
 * whose ids.json held IDs (a node moved to cluster mode, or IDs added with
 * --data-dir) answered 404 for each of them without a word. serve now
 * warns once at start, saying how to put them in Redis.
 */

const skip = redisMissing() ?? buildProblem(t) ?? false

t.test('serve --redis over a data dir whose ids.json holds IDs warns once that they are not served, and how to move them', { skip }, async t => {
  const redis = await startRedis(t)
  const dir = await mkdtemp(join(tmpdir(), 'rendezvous-file-ids-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })

  const quiet = startCli(t, ['serve', '--no-tls', '--port', '0', '--data-dir', dir, ...clusterArgs(redis.url)])
  await quiet.waitFor(/listening on http:\/\//, 20_000)
  t.notMatch(quiet.stderr(), /ids\.json/, 'no ids.json: nothing to say')
  await quiet.stop('SIGTERM')

  for (const id of ['before', 'second']) {
    const added = await runCli(t, ['ids', 'add', '--data-dir', dir, '--id', id, '--json'])
    t.equal(added.code, 0, added.stderr)
  }
  const serve = startCli(t, ['serve', '--no-tls', '--port', '0', '--data-dir', dir, ...clusterArgs(redis.url)])
  const port = Number((await serve.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)\//, 20_000))[1])
  const cli = `node ${relative(process.cwd(), CLI_MAIN)}`
  const warned = serve.stderr().split('\n').filter(line => line.includes('ids.json'))
  t.same(warned, [
    `rendezvous: warning: ${join(dir, 'ids.json')} holds 2 IDs, which cluster mode does not serve: its IDs are those in Redis. ` +
    `To serve one, add it there with its secret: ${cli} ids list --data-dir ${dir} --show-secret, ` +
    `then ${cli} ids add --redis ${redis.url} --id ID --secret SECRET`
  ], 'one line, before the node listens')
  // As it says: the node does not know the IDs of the file.
  const res = await fetch(`http://127.0.0.1:${port}/`, { headers: { authorization: `Basic ${Buffer.from('before:x').toString('base64')}` } })
  t.equal(res.status, 404)
  await serve.stop('SIGTERM')
})
