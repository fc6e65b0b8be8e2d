import { spawnSync } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Test } from 'tap'
import { describeExit, run, runCli } from '../helpers/cli'
import type { Credentials, Rendezvous } from '../helpers/e2e'
import { CLUSTER_SECRET } from './nodes'

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

export async function curl (t: Test, scratch: string, rv: Rendezvous, creds: Credentials, path: string, extra: string[] = []): Promise<Fetched> {
  const out = join(scratch, `body-${Math.random().toString(36).slice(2)}`)
  const result = await run(t, 'curl', [
    '--silent', '--show-error', '--noproxy', '*', '--max-time', '60', '--cacert', rv.certPath,
    '--digest', '--user', `${creds.id}:x`, '--output', out, '--write-out', '%{http_code}', ...extra, `${rv.url}${path}`
  ])
  const body = await readFile(out).catch(() => Buffer.alloc(0))
  return { status: Number(result.stdout.toString('utf8').trim()), body, stderr: result.stderr }
}
