import { execFileSync, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { FileRegistry } from '../../lib/registry/file-registry'
import { generateSecret } from '../../lib/registry/ids'
import type { Target } from './load'
import { nginxMissing, startNginx } from './nginx'
import { launch, startScript, startServe, stop, untilListening, type Script } from './procs'
import { sshMissing, startSshTunnel } from './sshd'

/** A way from the load generator to the backend; `group` decides which direct path and peer it is compared with. */
export interface BenchPath {
  name: string
  group: 'one hop' | 'tls' | 'two hops'
  target: Target
  label: string
  /** The processes between the client and the backend, whose CPU time per request is measured. */
  pids: number[]
}

export const HIDDEN_ID = 'bench-hidden'
export const AGENT_ID = 'bench-agent'
const POOL = 60
/** Room for every connection the bench opens to one relay at once, all from 127.0.0.1. */
const CONNECTIONS_PER_ADDRESS = 4096

export interface Bench {
  dir: string
  tls: { cert: string, key: string }
  paths: BenchPath[]
  skipped: string[]
  stop: () => Promise<void>
}

/** A throwaway EC certificate for every TLS endpoint, like the one `serve` generates for itself. */
export function makeCertificate (dir: string): { cert: string, key: string } {
  const cert = join(dir, 'cert.pem')
  const key = join(dir, 'key.pem')
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert,
    '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' })
  return { cert, key }
}

/** A data dir for `serve` holding `ids`, all with one secret. */
export async function provision (dataDir: string, ids: string[], secret: string): Promise<void> {
  const registry = new FileRegistry({ dataDir })
  await registry.ready()
  for (const id of ids) await registry.add({ id, secret })
  await registry.close()
}

/** The bench's hidden server (procs/hidden.ts) for HIDDEN_ID, keeping POOL connections parked at `relay`. */
export async function startHidden (relay: string, secret: string): Promise<Script> {
  return await startScript('hidden.ts', [JSON.stringify({ relay, ids: [HIDDEN_ID], secret, pool: POOL, dialing: POOL })])
}

/** Starts every path of scenarios 1 to 3; `dist` is the build of the relay under test. */
export async function startPaths (dir: string, dist: string, tls: { cert: string, key: string }): Promise<Bench> {
  const children: ChildProcess[] = []
  const keep = <T extends { child: ChildProcess }>(x: T): T => { children.push(x.child); return x }
  const skipped: string[] = []
  const secret = generateSecret()
  const backend = keep(await startScript('backend.ts', [tls.cert, tls.key]))
  const port = backend.info.port as number
  const tlsPort = backend.info.tlsPort as number
  const paths: BenchPath[] = [
    { name: 'direct', group: 'one hop', target: { port, tls: false, id: HIDDEN_ID }, label: 'direct to the backend', pids: [] },
    { name: 'direct-tls', group: 'tls', target: { port: tlsPort, tls: true, id: HIDDEN_ID }, label: 'direct to the HTTPS backend', pids: [] }
  ]

  const relays: Record<'plain' | 'tls' | 'plain-js', number> = { plain: 0, tls: 0, 'plain-js': 0 }
  const pids: Record<string, number> = {}
  const splicePaths: Record<string, string> = {}
  // plain-js: the same relay with its splice forced to the JavaScript path, for the native path's before/after in one run.
  for (const kind of ['plain', 'tls', 'plain-js'] as const) {
    const dataDir = join(dir, `relay-${kind}`)
    await provision(dataDir, [HIDDEN_ID, AGENT_ID], secret)
    // The load generator, the hidden server and the agent all connect from 127.0.0.1, so the per-address cap
    // (default 256) would count them all as one client: with 120 parked, 50 pairs spliced and replacements
    // dialing, it closed mobile connections at accept (the errors of scenario 2 before). The cap stays on, as
    // in production, sized for the whole bench; held.ts turns it off for the same reason.
    const args = ['--data-dir', dataDir, '--max-connections-per-address', String(CONNECTIONS_PER_ADDRESS),
      ...(kind === 'tls' ? ['--tls-cert', tls.cert, '--tls-key', tls.key] : ['--no-tls'])]
    const logFile = join(dir, `relay-${kind}.log`)
    const serve = keep(await startServe(dist, args, logFile, kind === 'plain-js' ? { ...process.env, RENDEZVOUS_SPLICE: 'js' } : process.env))
    relays[kind] = serve.port
    pids[`relay-${kind}`] = serve.child.pid as number
    splicePaths[kind] = splicePathOf(logFile)
    const url = `${kind === 'tls' ? 'https' : 'http'}://127.0.0.1:${relays[kind]}`
    keep(await startHidden(url, secret))
    if (kind === 'plain-js') continue
    // BENCH_AGENT_NODE_ARGS='--cpu-prof --cpu-prof-dir=DIR' profiles the agents, as BENCH_RELAY_NODE_ARGS does the relay.
    const agentNodeArgs = (process.env.BENCH_AGENT_NODE_ARGS ?? '').split(' ').filter(a => a !== '')
    const agent = launch(process.execPath, [...agentNodeArgs, join(dist, 'cli', 'main.js'), 'agent', '--server', url, '--id', AGENT_ID, '--secret', secret,
      '--to', `http://127.0.0.1:${port}`, '--pool', String(POOL), ...(kind === 'tls' ? ['--insecure'] : [])], { stdout: 'ignore' })
    children.push(agent)
    pids[`agent-${kind}`] = agent.pid as number
  }
  paths.push(
    { name: 'relay', group: 'one hop', target: { port: relays.plain, tls: false, id: HIDDEN_ID }, label: `rendezvous serve --no-tls + hidden server, ${splicePaths.plain} splice`, pids: [pids['relay-plain']] },
    { name: 'relay-js', group: 'one hop', target: { port: relays['plain-js'], tls: false, id: HIDDEN_ID }, label: `the same, ${splicePaths['plain-js']} splice`, pids: [pids['relay-plain-js']] },
    { name: 'relay-tls', group: 'tls', target: { port: relays.tls, tls: true, id: HIDDEN_ID }, label: 'rendezvous serve (TLS both sides) + hidden server', pids: [pids['relay-tls']] },
    { name: 'agent', group: 'two hops', target: { port: relays.plain, tls: false, id: AGENT_ID }, label: 'serve --no-tls + rendezvous agent', pids: [pids['relay-plain'], pids['agent-plain']] },
    { name: 'agent-tls', group: 'two hops', target: { port: relays.tls, tls: true, id: AGENT_ID }, label: 'serve (TLS) + rendezvous agent over TLS', pids: [pids['relay-tls'], pids['agent-tls']] }
  )

  // The hidden server's and the agent's pools, both parked, before any load.
  await untilParked(relays.plain, false, 2 * POOL, 60_000)
  await untilParked(relays.tls, true, 2 * POOL, 60_000)
  await untilParked(relays['plain-js'], false, POOL, 60_000)

  const pipe = keep(await startScript('pipe-relay.ts', [String(port)]))
  paths.push({ name: 'pipe', group: 'one hop', target: { port: pipe.info.port as number, tls: false, id: HIDDEN_ID }, label: 'bare Node pipe() relay', pids: [pipe.child.pid as number] })
  const pipeTls = keep(await startScript('pipe-relay.ts', [String(tlsPort), tls.cert, tls.key]))
  paths.push({ name: 'pipe-tls', group: 'tls', target: { port: pipeTls.info.port as number, tls: true, id: HIDDEN_ID }, label: 'bare Node TLS pipe() relay, TLS both sides', pids: [pipeTls.child.pid as number] })

  // Scenario 2's floor: the protocol's socket work in bare Node, with the same hidden server parking to it.
  const floor = keep(await startScript('floor-relay.ts'))
  const floorPort = floor.info.port as number
  keep(await startHidden(`http://127.0.0.1:${floorPort}`, secret))
  paths.push({ name: 'floor', group: 'one hop', target: { port: floorPort, tls: false, id: HIDDEN_ID }, label: 'bare Node rendezvous floor: park, pair, pipe(), nothing checked', pids: [floor.child.pid as number] })
  // The same with node:http's parser in front, as a relay that shares an HTTP server with an app must have.
  const floorHttp = keep(await startScript('floor-http.ts'))
  const floorHttpPort = floorHttp.info.port as number
  keep(await startHidden(`http://127.0.0.1:${floorHttpPort}`, secret))
  paths.push({ name: 'floor-http', group: 'one hop', target: { port: floorHttpPort, tls: false, id: HIDDEN_ID }, label: 'the floor behind node:http: both heads parsed, nothing checked', pids: [floorHttp.child.pid as number] })

  const noNginx = nginxMissing()
  if (noNginx === undefined) {
    const nginx = keep(await startNginx(dir, { port, tlsPort }, tls))
    paths.push(
      { name: 'nginx', group: 'one hop', target: { port: nginx.port, tls: false, id: HIDDEN_ID }, label: 'nginx stream proxy_pass', pids: [nginx.child.pid as number] },
      { name: 'nginx-tls', group: 'tls', target: { port: nginx.tlsPort, tls: true, id: HIDDEN_ID }, label: 'nginx stream, listen ssl + proxy_ssl', pids: [nginx.child.pid as number] }
    )
  } else {
    skipped.push(`nginx paths: ${noNginx}`)
  }

  const noSsh = sshMissing()
  if (noSsh === undefined) {
    try {
      const tunnel = await startSshTunnel(dir, port)
      children.push(tunnel.sshd, tunnel.ssh)
      paths.push({ name: 'ssh', group: 'two hops', target: { port: tunnel.port, tls: false, id: AGENT_ID }, label: 'ssh -R to a local sshd', pids: [tunnel.sshd.pid as number, tunnel.ssh.pid as number] })
    } catch (err) {
      skipped.push(`ssh -R path: ${(err as Error).message}`)
    }
  } else {
    skipped.push(`ssh -R path: ${noSsh}`)
  }
  for (const p of paths) await untilListening(p.target.port)
  return { dir, tls, paths, skipped, stop: async () => { await Promise.all(children.reverse().map(stop)) } }
}

/** Which data path a relay's spliced plain-TCP pairs take, from its startup line ("native" or "js"; "js" for builds that predate the choice). */
function splicePathOf (logFile: string): string {
  const m = /"splice":"(native|js)"/.exec(readFileSync(logFile, 'utf8'))
  return m?.[1] ?? 'js'
}

/** Resolves once `serve` on `port` reports `n` parked connections (its /healthz), or throws after `ms`. */
export async function untilParked (port: number, tls: boolean, n: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms
  let parked = -1
  while (Date.now() < deadline) {
    parked = await healthz(port, tls).then(h => h.parked ?? -1, () => -1)
    if (parked >= n) return
    await new Promise(resolve => setTimeout(resolve, 250))
  }
  throw new Error(`only ${parked} of ${n} connections parked after ${ms} ms`)
}

async function healthz (port: number, tls: boolean): Promise<{ parked?: number }> {
  const { request } = tls ? await import('node:https') : await import('node:http')
  return await new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/healthz', rejectUnauthorized: false, agent: false }, res => {
      let body = ''
      res.on('data', (c: Buffer) => { body += c.toString() })
      res.on('end', () => { try { resolve(JSON.parse(body)) } catch (err) { reject(err) } })
    })
    req.on('error', reject)
    req.end()
  })
}
