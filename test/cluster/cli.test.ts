import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { createServer, type AddressInfo, type Socket } from 'node:net'
import { join } from 'node:path'
import t from 'tap'
import { parseServeArgs } from '../../lib/cli/serve-args'
import { runCli } from '../helpers/cli'
import { startAgent, startServe } from '../helpers/e2e'
import { blobBytes, sha256, startHiddenSite } from '../helpers/hidden-site'
import { redisMissing, startRedis } from './redis-server'
import { addClusterId, clusterArgs, curl, curlMissing } from './cli-helpers'

// Three `rendezvous serve --redis` processes, `ids add --redis`, a real agent and real curl.

const skip = redisMissing() ?? curlMissing() ?? false

t.test('serve --redis: an agent parked on node A is reached with curl through B and C', { skip }, async t => {
  const scratch = await mkdtemp(join(tmpdir(), 'rendezvous-cluster-'))
  t.teardown(async () => { await rm(scratch, { recursive: true, force: true }) })
  const redis = await startRedis(t)
  const site = await startHiddenSite(t)
  const [a, b, c] = await Promise.all([0, 1, 2].map(async () => await startServe(t, { waitTimeout: 3, extraArgs: clusterArgs(redis.url) })))
  const creds = await addClusterId(t, redis.url)
  t.match(creds, { id: /^[0-9a-f-]{36}$/, secret: /^[A-Z2-7]{32,}$/, otpauth: /^otpauth:\/\/totp\// }, 'ids add --redis --json prints what --data-dir does')
  await startAgent(t, a!, creds, site.url, { pool: 2, parked: 2 })

  for (const [name, via] of [['B', b!], ['C', c!]] as const) {
    t.test(`a download through ${name} is byte-exact`, async t => {
      const got = await curl(t, scratch, via, creds, `/blob?size=${3 * 1024 * 1024}&seed=${name}`)
      t.equal(got.status, 200, got.stderr)
      t.equal(sha256(got.body), sha256(blobBytes(3 * 1024 * 1024, name)))
    })
    t.test(`an upload through ${name} arrives byte-exact, without Authorization`, async t => {
      const file = join(scratch, `upload-${name}`)
      const bytes = blobBytes(1024 * 1024 + 7, `up-${name}`)
      await writeFile(file, bytes)
      const before = site.seen.length
      const got = await curl(t, scratch, via, creds, '/echo?n=1', ['--data-binary', `@${file}`, '-H', 'X-Custom:  spaced  ', '-H', 'Content-Type: application/octet-stream'])
      t.equal(got.status, 200, got.stderr)
      t.equal(sha256(got.body), sha256(bytes))
      const seen = site.seen.slice(before).find(r => r.url === '/echo?n=1')
      t.ok(seen, 'the hidden site saw the request')
      const names = (seen?.rawHeaders ?? []).filter((_v, i) => i % 2 === 0).map(n => n.toLowerCase())
      t.notOk(names.includes('authorization'), 'Authorization was dropped')
      t.equal(seen?.rawHeaders[(seen?.rawHeaders.findIndex(h => h === 'X-Custom') ?? 0) + 1], 'spaced')
      t.equal(seen?.bodySha256, sha256(bytes))
    })
  }

  t.test('ids list --redis shows the ID; a new ID works on every node within a second', async t => {
    const listed = await runCli(t, ['ids', 'list', '--json', '--redis', redis.url])
    t.equal(listed.code, 0)
    t.match(JSON.parse(listed.stdout), [{ id: creds.id }])
    const fresh = await addClusterId(t, redis.url)
    const started = Date.now()
    // 503 (no hidden server) means the ID is known; 404 would mean it is not, yet.
    let status = 0
    while (Date.now() - started < 1000) {
      status = (await curl(t, scratch, c!, fresh, '/', ['--max-time', '5', '-H', 'X-Probe: 1'])).status
      if (status !== 404) break
    }
    t.equal(status, 503, 'known on C, answered 503 for want of an agent')
    const removed = await runCli(t, ['ids', 'remove', fresh.id, '--redis', redis.url])
    t.equal(removed.code, 0, removed.stderr)
  })
})

t.test('a peer port in use is a one-line error naming it, and the node does not hang', { skip }, async t => {
  const redis = await startRedis(t)
  const served = await runCli(t, ['serve', '--no-tls', '--port', '0', ...clusterArgs(redis.url).slice(0, -2), '--peer-port', String(redis.port)])
  t.equal(served.code, 1)
  // Named as the admin and metrics listeners are: not to be taken for --port's.
  t.equal(served.stderr, `rendezvous: The peer listener cannot listen on 127.0.0.1:${redis.port}: the port is already in use\n`)
  // 192.0.2.1 (TEST-NET-1) is on no interface here; the public --host is fine.
  const away = await runCli(t, ['serve', '--no-tls', '--port', '0', ...clusterArgs(redis.url).slice(0, -4), '--peer-host', '192.0.2.1', '--advertise', '127.0.0.1:1'])
  t.equal(away.code, 1)
  t.equal(away.stderr, 'rendezvous: The peer listener cannot listen on 192.0.2.1: no such address on this machine\n', 'the error names the peer host, not --host')
})

t.test('an unreachable Redis is a one-line error, for serve and for ids', async t => {
  // Nothing listens on port 1; the secret comes from the environment.
  const served = await runCli(t, ['serve', '--no-tls', '--port', '0', '--redis', 'redis://127.0.0.1:1'], { env: { RENDEZVOUS_CLUSTER_SECRET: 'a secret from the environment' } })
  t.equal(served.code, 1)
  t.match(served.stderr, /^rendezvous: Cannot reach Redis: .*ECONNREFUSED.*\n$/)
  const listed = await runCli(t, ['ids', 'list', '--redis', 'redis://127.0.0.1:1'])
  t.equal(listed.code, 1)
  t.match(listed.stderr, /^rendezvous: cannot reach Redis: .*ECONNREFUSED.*\n$/)
})

t.test('a Redis that accepts connections and never answers is a one-line error within the connect timeout, for serve and for ids', async t => {
  // A hung Redis, or TLS (rediss://) spoken to a plain port, looks like this from the client.
  const held: Socket[] = []
  const silent = createServer(socket => { held.push(socket); socket.on('error', () => {}) })
  await new Promise<void>(resolve => silent.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { for (const s of held) s.destroy(); silent.close() })
  const url = `redis://127.0.0.1:${(silent.address() as AddressInfo).port}`
  const [served, listed] = await Promise.all([
    runCli(t, ['serve', '--no-tls', '--port', '0', '--redis', url, '--cluster-secret', 'x'.repeat(16)], { timeoutMs: 30_000 }),
    runCli(t, ['ids', 'list', '--redis', url], { timeoutMs: 30_000 })
  ])
  t.equal(served.code, 1, `serve exits 1 (${served.stderr})`)
  t.match(served.stderr, /^rendezvous: Cannot reach Redis: Redis did not answer within 5000 ms; is the URL right, with rediss:\/\/ only for a Redis that speaks TLS\?\n$/)
  t.equal(listed.code, 1, `ids exits 1 (${listed.stderr})`)
  t.match(listed.stderr, /^rendezvous: cannot reach Redis: Redis did not answer within 5000 ms; .*\n$/)
  t.ok(served.ms < 15_000 && listed.ms < 15_000, `both gave up after the connect timeout, not a hang (${served.ms} ms, ${listed.ms} ms)`)
})

const advertising = ['--redis', 'redis://127.0.0.1:6379', '--cluster-secret', 'x'.repeat(16), '--peer-host', '0.0.0.0', '--advertise']

t.test('bad cluster flags are one-line errors (exit 2)', async t => {
  const cases: Array<[string, string[], RegExp]> = [
    ['cluster flag without --redis', ['--peer-port', '9000'], /--peer-port needs --redis URL/],
    ['--redis not a URL', ['--redis', 'localhost:6379', '--cluster-secret', 'x'.repeat(16)], /--redis must be a redis:\/\/ or rediss:\/\/ URL/],
    ['wildcard --peer-host without --advertise', ['--redis', 'redis://127.0.0.1:6379', '--cluster-secret', 'x'.repeat(16), '--peer-host', '0.0.0.0'], /--peer-host 0\.0\.0\.0 is no address other nodes can dial/],
    ['--advertise not HOST:PORT', ['--redis', 'redis://127.0.0.1:6379', '--cluster-secret', 'x'.repeat(16), '--advertise', 'nope'], /--advertise must be HOST:PORT/],
    ['--advertise port 0', [...advertising, '10.0.0.1:0'], /^--advertise has port 0, which no node can dial: use 1 to 65535, got "10\.0\.0\.1:0"$/],
    ['--advertise port past 65535', [...advertising, 'node1.example:65536'], /^--advertise has port 65536, which no node can dial/],
    ['--advertise 0.0.0.0', [...advertising, '0.0.0.0:9443'], /^--advertise names 0\.0\.0\.0, an address other nodes cannot dial/],
    ['--advertise ::', [...advertising, '[::]:9443'], /^--advertise names ::, an address other nodes cannot dial/],
    ['--advertise 0:0:0:0:0:0:0:0', [...advertising, '[0:0:0:0:0:0:0:0]:9443'], /^--advertise names 0:0:0:0:0:0:0:0, an address other nodes cannot dial/]
  ]
  // One process per case would be slow; the parser is what decides.
  for (const [name, flags, pattern] of cases) {
    t.throws(() => parseServeArgs(flags, {}), { message: pattern, exitCode: 2 }, name)
  }
})

t.test('a cluster option without --redis is named where it came from: a variable left in the shell, a key in the config file', async t => {
  t.throws(() => parseServeArgs([], { RENDEZVOUS_CLUSTER_SECRET: 'x'.repeat(16) }), { message: /^RENDEZVOUS_CLUSTER_SECRET needs --redis URL \(cluster mode\)$/, exitCode: 2 })
  const dir = mkdtempSync(join(tmpdir(), 'rendezvous-cluster-config-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'serve.json')
  writeFileSync(file, JSON.stringify({ peerPort: 9000 }))
  t.throws(() => parseServeArgs(['--config', file], {}), { message: new RegExp(`^peerPort in ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} needs --redis URL`), exitCode: 2 })
  t.throws(() => parseServeArgs(['--cluster-secret', 'x'.repeat(16)], {}), { message: /^--cluster-secret needs --redis URL/, exitCode: 2 })
})

t.test('an --advertise no node can dial stops serve with one line and exit 2; a good one different from the bound address shows both in the banner', { skip }, async t => {
  const redis = await startRedis(t)
  const refused = await runCli(t, ['serve', '--no-tls', '--port', '0', ...clusterArgs(redis.url), '--advertise', '0.0.0.0:9443'])
  t.equal(refused.code, 2)
  t.equal(refused.stderr, 'rendezvous: --advertise names 0.0.0.0, an address other nodes cannot dial: give this node\'s own address or name, got "0.0.0.0:9443"\n')
  const served = await startServe(t, { extraArgs: [...clusterArgs(redis.url), '--advertise', 'localhost:9443'] })
  const [, bound] = await served.proc.waitFor(/peer link on (127\.0\.0\.1:\d+), advertised as localhost:9443 \(plain TCP\)/)
  t.not(bound, '127.0.0.1:0', 'the port the listener was given')
})
