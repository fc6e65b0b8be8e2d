import { spawnSync } from 'node:child_process'
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { request } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { Test } from 'tap'
import { Redis } from 'ioredis'
import { buildProblem, ROOT, run, runCli, spawnProc } from './helpers/cli'
import { tlsCertPath, tlsKeyPath } from './helpers/tls'
import { makeCa, makeNodeCert } from './cluster/peer-certs'
import { freePort, redisMissing, startRedis } from './cluster/redis-server'

// What the docs tell users to type or paste, run as printed (with local
// addresses): a sample that does not run is a broken promise.

async function doc (name: string): Promise<string> {
  return await readFile(join(ROOT, 'docs', name), 'utf8')
}

/** The body of the first fenced block of `text` that starts with `start`. */
function block (text: string, start: string): string {
  const found = text.split(/^```[a-z]*\n/m).find((part, i) => i % 2 === 1 && part.startsWith(start))
  if (found === undefined) throw new Error(`no fenced block starting with ${JSON.stringify(start)}`)
  return found
}

/** The body of the first fenced block under `heading`. */
function blockUnder (text: string, heading: string): string {
  const at = text.indexOf(`\n${heading}\n`)
  if (at === -1) throw new Error(`no heading ${heading}`)
  return block(text.slice(at), '')
}

async function tempDir (t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'rendezvous-docs-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  return dir
}

t.test("cli.md's synopses are the usage lines of each command's --help", { skip: buildProblem(t) ?? false }, async t => {
  const synopsis = block(await doc('cli.md'), 'rendezvous serve ')
  const usage: string[] = []
  for (const command of ['serve', 'ids', 'agent', 'demo']) {
    const res = await runCli(t, [command, '--help'])
    t.equal(res.code, 0, `${command} --help`)
    // "usage: " and the indent under it are 7 columns.
    usage.push(...res.stdout.split('\n\n')[0].split('\n').map(line => line.slice(7)))
  }
  t.equal(synopsis, usage.join('\n') + '\n')
  t.match(synopsis, /^rendezvous demo \[--port 8443\] \[--data-dir DIR\] \[--id ID\] \[--log-level LEVEL\]$/m)
})

t.test('serve --help names the choices of --splice', { skip: buildProblem(t) ?? false }, async t => {
  const res = await runCli(t, ['serve', '--help'])
  t.match(res.stdout, /^ {2}--splice auto\|native\|js +data path of relayed pairs/m)
})

const haproxyMissing = spawnSync('haproxy', ['-v']).status === 0 ? false : 'haproxy is not installed (apt-get install haproxy)'

t.test("operations.md's HAProxy sample passes haproxy -c without a warning", { skip: haproxyMissing }, async t => {
  const dir = await tempDir(t)
  const pem = join(dir, 'rendezvous.pem')
  await writeFile(pem, Buffer.concat([await readFile(tlsCertPath), await readFile(tlsKeyPath)]), { mode: 0o600 })
  const sample = block(await doc('operations.md'), '# haproxy.cfg\n')
  t.match(sample, '/etc/haproxy/rendezvous.pem')
  const file = join(dir, 'haproxy.cfg')
  await writeFile(file, sample.replace('/etc/haproxy/rendezvous.pem', pem))
  const res = await run(t, 'haproxy', ['-c', '-f', file])
  t.equal(res.code, 0, res.stderr)
  t.notMatch(res.stderr, /WARNING|ALERT/)
})

// @fastify/redis is not a dependency of the package: a stand-in of the same
// shape (fastify.redis, an ioredis client from `url`) takes its place.
const FASTIFY_REDIS = `
const fp = require(${JSON.stringify(join(ROOT, 'node_modules', 'fastify-plugin'))})
const { Redis } = require(${JSON.stringify(join(ROOT, 'node_modules', 'ioredis'))})
module.exports = fp(async (fastify, opts) => {
  const client = new Redis(opts.url)
  fastify.decorate('redis', client)
  fastify.addHook('onClose', async () => { await client.quit() })
})
`

async function application (dir: string): Promise<void> {
  const modules = join(dir, 'node_modules')
  await mkdir(join(modules, '@fastify', 'redis'), { recursive: true })
  await writeFile(join(modules, '@fastify', 'redis', 'index.js'), FASTIFY_REDIS)
  await symlink(join(ROOT, 'node_modules', 'fastify'), join(modules, 'fastify'))
  await symlink(ROOT, join(modules, 'fastify-rendezvous'))
  await copyFile(tlsCertPath, join(dir, 'cert.pem'))
  await copyFile(tlsKeyPath, join(dir, 'key.pem'))
  const ca = await makeCa('rendezvous peer CA')
  const node = await makeNodeCert(ca, 'node1')
  await writeFile(join(dir, 'peer.pem'), node.cert)
  await writeFile(join(dir, 'peer-key.pem'), node.key, { mode: 0o600 })
  await writeFile(join(dir, 'peer-ca.pem'), ca.cert)
}

async function get (port: number): Promise<{ status: number | undefined, challenge: string | undefined }> {
  return await new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path: '/', rejectUnauthorized: false }, res => {
      res.resume()
      resolve({ status: res.statusCode, challenge: res.headers['www-authenticate'] })
    }).on('error', reject).end()
  })
}

t.test("cluster.md's application sample runs as CommonJS", { skip: redisMissing() ?? buildProblem(t) ?? false }, async t => {
  const redis = await startRedis(t)
  const dir = await tempDir(t)
  await application(dir)
  const [peerPort, port] = [await freePort(), await freePort()]
  const sample = blockUnder(await doc('cluster.md'), '## In an application')
  const local = [
    ['redis://10.0.0.10:6379', redis.url],
    ["peerHost: '0.0.0.0'", "peerHost: '127.0.0.1'"],
    ['peerPort: 9443', `peerPort: ${peerPort}`],
    ["advertise: '10.0.0.1:9443'", `advertise: '127.0.0.1:${peerPort}'`],
    ["host: '0.0.0.0', port: 8443", `host: '127.0.0.1', port: ${port}`]
  ]
  let code = sample
  for (const [from, to] of local) {
    t.ok(code.includes(from), `the sample has ${from}`)
    code = code.replace(from, to)
  }
  await writeFile(join(dir, 'app.cjs'), code)
  const app = spawnProc(t, 'the cluster sample', process.execPath, [join(dir, 'app.cjs')], {
    cwd: dir,
    env: { RENDEZVOUS_CLUSTER_SECRET: 'a cluster secret of the docs test' }
  })
  await app.waitFor(/joined the cluster/)
  await app.waitFor(/Server listening at https:\/\/127\.0\.0\.1:\d+/)
  const res = await get(port)
  t.equal(res.status, 401, 'the relay answers')
  t.match(res.challenge, /^Digest realm="rendezvous"/)
  const client = new Redis(redis.url)
  t.teardown(async () => { await client.quit() })
  t.equal((await client.keys('rendezvous:node:*')).length, 1, 'the node is present in Redis')
})
