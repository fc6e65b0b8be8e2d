import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import t from 'tap'
import type { Test } from 'tap'
import { ROOT, run, spawnProc, startCli } from '../helpers/cli'
import { blobBytes, sha256, startHiddenSite } from '../helpers/hidden-site'
import { tlsCertPath } from '../helpers/tls'
import { until } from '../helpers/until'
import { addClusterId, curlMissing, startNodeProcess } from './cli-helpers'
import { freePort, redisMissing, startRedis } from './redis-server'

// docs/cluster.md's balancer configurations, nginx `stream` and HAProxy, run
// as printed in front of three serve nodes.

const STREAM_MODULE = '/usr/lib/nginx/modules/ngx_stream_module.so'
function nginxMissing (): string | undefined {
  if (spawnSync('nginx', ['-v']).status !== 0) return 'nginx is not installed (apt-get install nginx-light libnginx-mod-stream)'
  return existsSync(STREAM_MODULE) ? undefined : 'nginx has no stream module (apt-get install libnginx-mod-stream)'
}
function haproxyMissing (): string | undefined {
  return spawnSync('haproxy', ['-v']).status === 0 ? undefined : 'haproxy is not installed (apt-get install haproxy)'
}

/** The fenced block of docs/cluster.md in `language`, its upstream pointed at these nodes and its listener at this port. */
async function documentedBlock (language: string, upstream: RegExp, node: (port: number) => string, listen: [string, string], nodePorts: number[]): Promise<string> {
  const doc = await readFile(join(ROOT, 'docs', 'cluster.md'), 'utf8')
  const block = new RegExp('```' + language + '\\n([\\s\\S]*?)```').exec(doc)?.[1]
  if (block === undefined) throw new Error(`docs/cluster.md has no ${language} block`)
  if (!block.includes(listen[0])) throw new Error(`the documented ${language} block does not have ${listen[0]}`)
  let n = 0
  const config = block.replace(upstream, () => node(nodePorts[n++])).replace(listen[0], listen[1])
  if (n !== nodePorts.length) throw new Error(`the documented ${language} upstream has ${n} servers, not ${nodePorts.length}`)
  return config
}

interface Balancer {
  name: string
  missing: () => string | undefined
  /** Writes the configuration into `dir` and returns the command that runs it in the foreground. */
  configure: (nodePorts: number[], listen: number, dir: string) => Promise<[string, string[]]>
}

const BALANCERS: Balancer[] = [{
  name: 'nginx stream',
  missing: nginxMissing,
  configure: async (nodePorts, listen, dir) => {
    const block = await documentedBlock('nginx', /server 10\.0\.0\.\d+:8443;/g, port => `server 127.0.0.1:${port};`, ['listen 443;', `listen 127.0.0.1:${listen};`], nodePorts)
    const file = join(dir, 'nginx.conf')
    await writeFile(file, `${block}\npid ${join(dir, 'nginx.pid')};\nerror_log ${join(dir, 'error.log')};\n`)
    return ['nginx', ['-p', dir, '-e', join(dir, 'error.log'), '-c', file, '-g', 'daemon off; master_process off;']]
  }
}, {
  name: 'HAProxy',
  missing: haproxyMissing,
  configure: async (nodePorts, listen, dir) => {
    const block = await documentedBlock('haproxy', /server n\d+ 10\.0\.0\.\d+:8443/g, port => `server n${port} 127.0.0.1:${port}`, ['bind :443', `bind 127.0.0.1:${listen}`], nodePorts)
    const file = join(dir, 'haproxy.cfg')
    await writeFile(file, block)
    // -db: in the foreground, without forking.
    return ['haproxy', ['-db', '-f', file]]
  }
}]

async function acceptsConnections (port: number): Promise<boolean> {
  return await new Promise(resolve => {
    const s = connect(port, '127.0.0.1')
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => resolve(false))
  })
}

for (const balancer of BALANCERS) {
  const skip = redisMissing() ?? curlMissing() ?? balancer.missing() ?? false
  t.test(`three nodes behind the documented ${balancer.name} balancer serve every request`, { skip }, async t => await behindBalancer(t, balancer))
}

async function behindBalancer (t: Test, balancer: Balancer): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'rendezvous-lb-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  const redis = await startRedis(t)
  const site = await startHiddenSite(t)
  const nodes = await Promise.all([0, 1, 2].map(async i => await startNodeProcess(t, redis.url, join(dir, `node-${i}`))))
  const listen = await freePort()
  const [command, args] = await balancer.configure(nodes.map(n => n.port), listen, dir)
  const lbProc = spawnProc(t, command, command, args)
  await until(async () => await acceptsConnections(listen) || lbProc.done(), 10_000, `${balancer.name} listening`)
  t.notOk(lbProc.done(), `${balancer.name} runs: ${lbProc.output()}`)

  const creds = await addClusterId(t, redis.url)
  const lb = `https://127.0.0.1:${listen}`
  startCli(t, ['agent', '--server', lb, '--id', creds.id, '--secret', creds.secret, '--to', site.url, '--ca', tlsCertPath, '--pool', '1'])
  const nodeText = async (port: number, path: string): Promise<string> =>
    (await run(t, 'curl', ['--silent', '--noproxy', '*', '--cacert', tlsCertPath, `https://127.0.0.1:${port}${path}`])).stdout.toString('utf8')
  const parked = async (): Promise<number> => {
    const counts = await Promise.all(nodes.map(async n => (await n.healthz()).parked ?? 0))
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
}
