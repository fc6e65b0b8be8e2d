import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import t from 'tap'
import { ROOT, run, spawnProc, startCli } from '../helpers/cli'
import { blobBytes, sha256, startHiddenSite } from '../helpers/hidden-site'
import { tlsCertPath, tlsKeyPath } from '../helpers/tls'
import { until } from '../helpers/until'
import { addClusterId, clusterArgs, curlMissing } from './cli-helpers'
import { freePort, redisMissing, startRedis } from './redis-server'

// docs/cluster.md's nginx `stream` configuration, run as printed, in front of three serve nodes.

const STREAM_MODULE = '/usr/lib/nginx/modules/ngx_stream_module.so'
function nginxMissing (): string | undefined {
  if (spawnSync('nginx', ['-v']).status !== 0) return 'nginx is not installed (apt-get install nginx-light libnginx-mod-stream)'
  return existsSync(STREAM_MODULE) ? undefined : 'nginx has no stream module (apt-get install libnginx-mod-stream)'
}
const skip = redisMissing() ?? curlMissing() ?? nginxMissing() ?? false

/** The ```nginx block of docs/cluster.md, pointed at these nodes and this port. */
async function documentedConfig (nodePorts: number[], listen: number, dir: string): Promise<string> {
  const doc = await readFile(join(ROOT, 'docs', 'cluster.md'), 'utf8')
  const block = /```nginx\n([\s\S]*?)```/.exec(doc)?.[1]
  if (block === undefined) throw new Error('docs/cluster.md has no nginx block')
  let n = 0
  const config = block
    .replace(/server 10\.0\.0\.\d+:8443;/g, () => `server 127.0.0.1:${nodePorts[n++]};`)
    .replace('listen 443;', `listen 127.0.0.1:${listen};`)
  if (n !== nodePorts.length) throw new Error(`the documented upstream has ${n} servers, not ${nodePorts.length}`)
  return `${config}\npid ${join(dir, 'nginx.pid')};\nerror_log ${join(dir, 'error.log')};\n`
}

async function acceptsConnections (port: number): Promise<boolean> {
  return await new Promise(resolve => {
    const s = connect(port, '127.0.0.1')
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => resolve(false))
  })
}

t.test('three nodes behind the documented nginx stream balancer serve every request', { skip }, async t => {
  const dir = await mkdtemp(join(tmpdir(), 'rendezvous-lb-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  const redis = await startRedis(t)
  const site = await startHiddenSite(t)
  const nodes = await Promise.all([0, 1, 2].map(async i => {
    const proc = startCli(t, ['serve', '--port', '0', '--data-dir', join(dir, `node-${i}`), '--tls-cert', tlsCertPath, '--tls-key', tlsKeyPath, '--log-level', 'warn', ...clusterArgs(redis.url)])
    const port = Number((await proc.waitFor(/listening on https:\/\/127\.0\.0\.1:(\d+)\//, 20_000))[1])
    return { proc, port }
  }))
  const listen = await freePort()
  await writeFile(join(dir, 'nginx.conf'), await documentedConfig(nodes.map(n => n.port), listen, dir))
  const nginx = spawnProc(t, 'nginx', 'nginx', ['-p', dir, '-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf'), '-g', 'daemon off; master_process off;'])
  await until(async () => await acceptsConnections(listen) || nginx.done(), 10_000, 'nginx listening')
  t.notOk(nginx.done(), `nginx runs: ${nginx.output()}`)

  const creds = await addClusterId(t, redis.url)
  const lb = `https://127.0.0.1:${listen}`
  startCli(t, ['agent', '--server', lb, '--id', creds.id, '--secret', creds.secret, '--to', site.url, '--ca', tlsCertPath, '--pool', '1'])
  const nodeText = async (port: number, path: string): Promise<string> =>
    (await run(t, 'curl', ['--silent', '--noproxy', '*', '--cacert', tlsCertPath, `https://127.0.0.1:${port}${path}`])).stdout.toString('utf8')
  const parked = async (): Promise<number> => {
    const counts = await Promise.all(nodes.map(async n => Number(/"parked":(\d+)/.exec(await nodeText(n.port, '/healthz'))?.[1] ?? 0)))
    return counts.reduce((a, b) => a + b, 0)
  }
  await until(async () => await parked() >= 1, 15_000, 'the agent parked behind the balancer')

  for (let i = 0; i < 6; i++) {
    const out = join(dir, `body-${i}`)
    const got = await run(t, 'curl', ['--silent', '--show-error', '--noproxy', '*', '--max-time', '30', '--cacert', tlsCertPath,
      '--digest', '--user', `${creds.id}:x`, '--output', out, '--write-out', '%{http_code}', `${lb}/blob?size=65536&seed=lb-${i}`])
    t.equal(got.stdout.toString('utf8'), '200', `request ${i} through the balancer: ${got.stderr}`)
    t.equal(sha256(await readFile(out)), sha256(blobBytes(65536, `lb-${i}`)), `request ${i} byte-exact`)
  }

  let forwarded = 0
  for (const node of nodes) {
    forwarded += Number(/rendezvous_requests_total\{outcome="forwarded"\} (\d+)/.exec(await nodeText(node.port, '/metrics'))?.[1] ?? 0)
  }
  t.ok(forwarded > 0, `some requests landed on a node other than the agent's and were forwarded (${forwarded})`)
})
