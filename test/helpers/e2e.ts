import { mkdtemp, rm } from 'node:fs/promises'
import { readFileSync } from 'node:fs'
import https from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { buildProblem, CLI_MAIN, describeExit, runCli, spawnProc, type Proc } from './cli'
import { startHiddenSite, type HiddenSite } from './hidden-site'

/**
 * End-to-end harness: the built CLI as real processes, `serve` + `ids add` +
 * `agent`, all on 127.0.0.1, for real clients (curl, Python) to run against.
 * Teardown stops everything and removes the data dirs.
 */

interface Teardown { teardown: (fn: () => unknown) => void, comment?: (...message: unknown[]) => void }

export interface Rendezvous {
  proc: Proc
  port: number
  /** `https://127.0.0.1:PORT` (no trailing slash). */
  url: string
  dataDir: string
  /** The self-signed certificate serve generated: the CA for every client. */
  certPath: string
  ca: Buffer
  /** GET /healthz, verified against `ca`. */
  healthz: () => Promise<Health>
  /** Polls /healthz until `test` holds. */
  waitHealth: (test: (h: Health) => boolean, what: string, timeoutMs?: number) => Promise<Health>
}

export interface Health { status: string, parked?: number, waiting?: number, spliced?: number }

export interface ServeOptions {
  /** Seconds, for --wait-timeout. */
  waitTimeout?: number
  extraArgs?: string[]
  /** Reuse a data dir (and its certificate), e.g. to restart serve; the caller removes it. */
  dataDir?: string
  /** Default 0, a free port. */
  port?: number
  /** Runs node under this command, e.g. `['prlimit', '--nofile=64:64']`. */
  wrapper?: string[]
}

/** Starts `rendezvous serve --port 0` with TLS on a fresh data dir; waits for its `listening on` line. */
export async function startServe (t: Teardown, opts: ServeOptions = {}): Promise<Rendezvous> {
  const problem = buildProblem(t)
  if (problem !== undefined) throw new Error(problem)
  const dataDir = opts.dataDir ?? await mkdtemp(join(tmpdir(), 'rendezvous-e2e-'))
  // Registered first, so it runs last: after the processes using the dir are gone.
  if (opts.dataDir === undefined) t.teardown(async () => { await rm(dataDir, { recursive: true, force: true }) })
  const args = [CLI_MAIN, 'serve', '--host', '127.0.0.1', '--port', String(opts.port ?? 0), '--data-dir', dataDir]
  if (opts.waitTimeout !== undefined) args.push('--wait-timeout', String(opts.waitTimeout))
  args.push(...opts.extraArgs ?? [])
  const [cmd, ...before] = [...opts.wrapper ?? [], process.execPath]
  const proc = spawnProc(t, 'serve', cmd, [...before, ...args])
  const match = await proc.waitFor(/listening on https:\/\/127\.0\.0\.1:(\d+)\//, 20_000)
  const port = Number(match[1])
  const certPath = join(dataDir, 'tls', 'cert.pem')
  const ca = readFileSync(certPath)
  const url = `https://127.0.0.1:${port}`
  const healthz = (): Promise<Health> => getJson(`${url}/healthz`, ca) as Promise<Health>
  const waitHealth = async (test: (h: Health) => boolean, what: string, timeoutMs = 15_000): Promise<Health> => {
    const deadline = Date.now() + timeoutMs
    let last: Health | string = 'no answer yet'
    for (;;) {
      try {
        last = await healthz()
        if (test(last)) return last
      } catch (err) {
        last = (err as Error).message
      }
      if (proc.done()) throw new Error(`serve exited while waiting for ${what}; output:\n${proc.output()}`)
      if (Date.now() > deadline) throw new Error(`no ${what} within ${timeoutMs} ms; last /healthz: ${JSON.stringify(last)}`)
      await sleep(50)
    }
  }
  return { proc, port, url, dataDir, certPath, ca, healthz, waitHealth }
}

function getJson (url: string, ca: Buffer): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca, agent: false, timeout: 5000 }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8')
        if (res.statusCode !== 200) return reject(new Error(`${url}: ${res.statusCode} ${body}`))
        try {
          resolve(JSON.parse(body))
        } catch {
          reject(new Error(`${url}: not JSON: ${body}`))
        }
      })
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`${url}: timed out`)))
    req.on('error', reject)
  })
}

export interface Credentials { id: string, secret: string }

/** `rendezvous ids add --json --data-dir DIR`. */
export async function addId (t: Teardown, dataDir: string): Promise<Credentials> {
  const result = await runCli(t, ['ids', 'add', '--json', '--data-dir', dataDir])
  if (result.code !== 0) throw new Error(`ids add exited ${describeExit(result)}: ${result.stderr}`)
  let parsed: { id?: unknown, secret?: unknown }
  try {
    parsed = JSON.parse(result.stdout)
  } catch {
    throw new Error(`ids add --json printed no JSON: ${result.stdout}`)
  }
  if (typeof parsed.id !== 'string' || typeof parsed.secret !== 'string') {
    throw new Error(`ids add --json lacks id or secret: ${result.stdout}`)
  }
  return { id: parsed.id, secret: parsed.secret }
}

export interface AgentOptions {
  pool?: number
  /** How many parked connections /healthz must report before this resolves. Default 1. */
  parked?: number
}

/** Starts `rendezvous agent` against `rv` and waits until /healthz reports it parked. */
export async function startAgent (t: Teardown, rv: Rendezvous, creds: Credentials, to: string, opts: AgentOptions = {}): Promise<Proc> {
  const args = [CLI_MAIN, 'agent', '--server', rv.url, '--id', creds.id, '--secret', creds.secret, '--to', to, '--ca', rv.certPath]
  if (opts.pool !== undefined) args.push('--pool', String(opts.pool))
  const proc = spawnProc(t, 'agent', process.execPath, args)
  const want = opts.parked ?? 1
  const parked = rv.waitHealth(h => (h.parked ?? 0) >= want, `${want} parked connection(s)`)
  const died = proc.exited.then(exit => { throw new Error(`agent exited (${describeExit(exit)}) before parking; output:\n${proc.output()}`) })
  died.catch(() => {})
  try {
    await Promise.race([parked, died])
  } catch (err) {
    throw new Error(`${(err as Error).message}\nagent output:\n${proc.output()}`)
  }
  return proc
}

export interface World {
  rv: Rendezvous
  site: HiddenSite
  creds: Credentials
  agent: Proc
}

/** The whole chain: hidden site, serve, an ID, and an agent parked for it. */
export async function startWorld (t: Teardown & { passing?: () => boolean, comment?: (...a: unknown[]) => void }, opts: ServeOptions & AgentOptions = {}): Promise<World> {
  const site = await startHiddenSite(t)
  const rv = await startServe(t, opts)
  const creds = await addId(t, rv.dataDir)
  const agent = await startAgent(t, rv, creds, site.url, opts)
  // Teardowns run last-in first-out: this one runs before the processes are stopped.
  t.teardown(() => {
    if (t.passing?.() === false) {
      t.comment?.(`serve output:\n${rv.proc.output()}\nagent output:\n${agent.output()}`)
    }
  })
  return { rv, site, creds, agent }
}
