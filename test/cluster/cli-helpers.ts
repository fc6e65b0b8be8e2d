import { spawnSync } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Test } from 'tap'
import https from 'node:https'
import { describeExit, run, runCli, startCli, type Proc } from '../helpers/cli'
import { startServe, type Credentials, type Health, type Rendezvous } from '../helpers/e2e'
import { tlsCert, tlsCertPath, tlsKeyPath } from '../helpers/tls'
import { CLUSTER_SECRET } from './nodes'
import { peerTlsFlags, type PeerFiles } from './peer-certs'

export function curlMissing (): string | undefined {
  return spawnSync('curl', ['--version']).status === 0 ? undefined : 'curl is not installed'
}

export function clusterArgs (redisUrl: string): string[] {
  return ['--redis', redisUrl, '--cluster-secret', CLUSTER_SECRET, '--peer-host', '127.0.0.1', '--peer-port', '0']
}

export async function addClusterId (t: Test, redisUrl: string): Promise<Credentials> {
  const result = await runCli(t, ['ids', 'add', '--json', '--redis', redisUrl])
  if (result.code !== 0) throw new Error(`ids add --redis exited ${describeExit(result)}: ${result.stderr}`)
  const parsed = JSON.parse(result.stdout) as Credentials & { otpauth?: string }
  return parsed
}

export interface Fetched { status: number, body: Buffer, stderr: string }

export async function curl (t: Test, scratch: string, rv: Pick<Rendezvous, 'url'> & { certPath?: string }, creds: Credentials, path: string, extra: string[] = []): Promise<Fetched> {
  const out = join(scratch, `body-${Math.random().toString(36).slice(2)}`)
  const result = await run(t, 'curl', [
    '--silent', '--show-error', '--noproxy', '*', '--max-time', '60', '--cacert', rv.certPath ?? tlsCertPath,
    '--digest', '--user', `${creds.id}:x`, '--output', out, '--write-out', '%{http_code}', ...extra, `${rv.url}${path}`
  ])
  const body = await readFile(out).catch(() => Buffer.alloc(0))
  return { status: Number(result.stdout.toString('utf8').trim()), body, stderr: result.stderr }
}

/** The Prometheus text a node serves on its public port. */
export async function scrapeMetrics (rv: Rendezvous): Promise<string> {
  return await new Promise((resolve, reject) => {
    https.get(`${rv.url}/metrics`, { ca: rv.ca, agent: false, timeout: 5000 }, res => {
      let body = ''
      res.setEncoding('utf8').on('data', (chunk: string) => { body += chunk }).on('end', () => resolve(body))
    }).on('error', reject)
  })
}

export interface NodeProcess {
  proc: Proc
  port: number
  /** `https://127.0.0.1:PORT`, serving the test certificate (tlsCertPath), as every node of a cluster serves one certificate. */
  url: string
  healthz: () => Promise<Health>
}

/** `rendezvous serve --redis` with the shared test certificate, on a free port. */
export async function startNodeProcess (t: Test, redisUrl: string, dataDir: string, extraArgs: string[] = []): Promise<NodeProcess> {
  const proc = startCli(t, ['serve', '--port', '0', '--data-dir', dataDir, '--tls-cert', tlsCertPath, '--tls-key', tlsKeyPath, '--log-level', 'warn', ...clusterArgs(redisUrl), ...extraArgs])
  const port = Number((await proc.waitFor(/listening on https:\/\/127\.0\.0\.1:(\d+)\//, 20_000))[1])
  const url = `https://127.0.0.1:${port}`
  const healthz = async (): Promise<Health> => await new Promise((resolve, reject) => {
    https.get(`${url}/healthz`, { ca: tlsCert, agent: false, timeout: 5000 }, res => {
      let body = ''
      res.setEncoding('utf8').on('data', (chunk: string) => { body += chunk }).on('end', () => {
        try { resolve(JSON.parse(body) as Health) } catch (err) { reject(err) }
      })
    }).on('error', reject).on('timeout', function (this: { destroy: (e: Error) => void }) { this.destroy(new Error('healthz timed out')) })
  })
  return { proc, port, url, healthz }
}

export interface TlsNode { rv: Rendezvous, peerPort: number }

/** `rendezvous serve --redis` with mutual TLS on the peer link from `files`; its peer port is read from the banner. */
export async function startTlsNode (t: Test, redisUrl: string, files: PeerFiles, extra: string[] = []): Promise<TlsNode> {
  const rv = await startServe(t, { waitTimeout: 3, extraArgs: [...clusterArgs(redisUrl), ...peerTlsFlags(files), ...extra] })
  const peerPort = Number((await rv.proc.waitFor(/peer link on 127\.0\.0\.1:(\d+) \(mutual TLS\)/))[1])
  return { rv, peerPort }
}
