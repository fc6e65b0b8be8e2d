import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'

/**
 * A real redis-server of the test's own, on a loopback port picked by
 * binding a socket first (Redis cannot listen on port 0 and report it).
 * No snapshots and no AOF while it runs; stop() saves once on the way out
 * so that start() brings the same data back, as a persistent Redis would.
 */
export interface TestRedis {
  url: string
  port: number
  /** SHUTDOWN SAVE: the data survives for start(). */
  stop: () => Promise<void>
  /** SHUTDOWN NOSAVE: start() brings back the last snapshot (SAVE), as after a crash. */
  crash: () => Promise<void>
  /** Starts again on the same port with the saved data. */
  start: () => Promise<void>
  running: () => boolean
  /** SIGSTOP: a hung Redis, whose connections stay open and answer nothing. */
  pause: () => void
  /** SIGCONT. */
  resume: () => void
}

interface Teardown { teardown: (fn: () => unknown) => void }

const BINARY = 'redis-server'

/** Why the cluster tests cannot run here, if they cannot. Only a missing redis-server is a reason. */
export function redisMissing (): string | undefined {
  const probe = spawnSync(BINARY, ['--version'], { encoding: 'utf8' })
  return probe.error === undefined && probe.status === 0
    ? undefined
    : 'redis-server is not installed (apt-get install redis-server; .ci/run installs it)'
}

/** A loopback port nobody listens on right now, for servers that cannot take port 0. */
export async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise(resolve => server.close(resolve))
  return port
}

export async function startRedis (t: Teardown): Promise<TestRedis> {
  const dir = await mkdtemp(join(tmpdir(), 'rendezvous-redis-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  const port = await freePort()
  let child: ChildProcess | undefined
  let exited: Promise<void> = Promise.resolve()

  const start = async (): Promise<void> => {
    const proc = spawn(BINARY, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--dbfilename', 'dump.rdb'], { stdio: ['ignore', 'pipe', 'pipe'] })
    child = proc
    exited = new Promise(resolve => proc.once('close', () => { child = undefined; resolve() }))
    let out = ''
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`redis-server did not start within 15 s: ${out}`)), 15_000)
      proc.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
        out += chunk
        if (out.includes('Ready to accept connections')) {
          clearTimeout(timer)
          resolve()
        }
      })
      proc.once('close', () => {
        clearTimeout(timer)
        reject(new Error(`redis-server exited: ${out}`))
      })
    })
  }

  const shutdown = async (how: 'SAVE' | 'NOSAVE'): Promise<void> => {
    if (child === undefined) return
    const client = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
    client.on('error', () => {})
    await client.connect()
    await client.call('SHUTDOWN', how).catch(() => {})
    client.disconnect()
    await exited
  }

  t.teardown(async () => {
    child?.kill('SIGCONT')
    child?.kill('SIGKILL')
    await exited
  })
  await start()
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop: async () => { await shutdown('SAVE') },
    crash: async () => { await shutdown('NOSAVE') },
    start,
    running: () => child !== undefined,
    pause: () => { child?.kill('SIGSTOP') },
    resume: () => { child?.kill('SIGCONT') }
  }
}
