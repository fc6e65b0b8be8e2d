/*
 * Cluster scenario: new rendezvous per second served by a node that holds the
 * parked connections (local) and by a node that must forward to it, in the
 * same run, with what Redis carried per rendezvous. Standalone:
 *
 *   npx tsx bench/cluster.ts [--seconds 5] [--concurrency 16] [--pool 32]
 *
 * Needs redis-server on the PATH. Plain HTTP on loopback, so the figures are
 * the relay's own cost, not TLS's.
 */
import { connect, type AddressInfo, type Socket } from 'node:net'
import { parseArgs } from 'node:util'
import Fastify, { type FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import rendezvous from '../lib/index'
import { createV1Token } from '../lib/tokens/v1'
// The test suite's throwaway redis-server: its own port, no persistence.
import { startRedis } from '../test/cluster/redis-server'

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '16' },
    pool: { type: 'string', default: '32' }
  }
})
const SECONDS = Number(values.seconds)
const CONCURRENCY = Number(values.concurrency)
const POOL = Number(values.pool)
const ID = 'bench-hub'
const SECRET = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP'
const ANSWER = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok'

async function startNode (name: string, redisUrl: string): Promise<{ app: FastifyInstance, port: number }> {
  const app = Fastify({ logger: false })
  await app.register(rendezvous, {
    redis: redisUrl,
    cluster: { secret: 'bench cluster secret', nodeId: name },
    maxParkedPerId: POOL * 2,
    waitTimeout: 10_000
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, port: (app.server.address() as AddressInfo).port }
}

/** A hidden server that keeps POOL connections parked on `port` and answers each relayed request once. */
function hiddenPool (port: number): () => void {
  let stopped = false
  const park = (): void => {
    if (stopped) return
    const s = connect(port, '127.0.0.1')
    let phase: 'connect' | 'parked' = 'connect'
    let buffered = ''
    s.on('error', () => {})
    s.on('close', () => { if (phase === 'connect') setTimeout(park, 50) })
    s.on('data', chunk => {
      buffered += chunk.toString('latin1')
      if (phase === 'connect') {
        if (!buffered.startsWith('HTTP/1.1 200 OK\r\n\r\n')) return
        phase = 'parked'
        buffered = buffered.slice(19)
      }
      if (buffered.includes('\r\n\r\n')) {
        s.end(ANSWER)
        park()
      }
    })
    s.write(`CONNECT uuid:${ID}?response=${createV1Token(ID, SECRET)} HTTP/1.1\r\nHost: bench\r\n\r\n`)
  }
  for (let i = 0; i < POOL; i++) park()
  return () => { stopped = true }
}

function once (port: number): Promise<number> {
  const started = process.hrtime.bigint()
  return new Promise((resolve, reject) => {
    const s: Socket = connect(port, '127.0.0.1')
    let text = ''
    s.on('data', c => { text += c.toString('latin1') })
    s.on('error', reject)
    s.on('close', () => text.startsWith('HTTP/1.1 200 ') && text.endsWith('ok')
      ? resolve(Number(process.hrtime.bigint() - started) / 1e6)
      : reject(new Error(`unexpected answer: ${JSON.stringify(text.slice(0, 80))}`)))
    s.write(`GET /bench HTTP/1.1\r\nHost: bench\r\nAuthorization: Digest username="${ID}"\r\n\r\n`)
  })
}

async function load (port: number): Promise<{ count: number, errors: number, latencies: number[] }> {
  const deadline = Date.now() + SECONDS * 1000
  const latencies: number[] = []
  let errors = 0
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (Date.now() < deadline) {
      try { latencies.push(await once(port)) } catch { errors++ }
    }
  }))
  return { count: latencies.length, errors, latencies: latencies.sort((a, b) => a - b) }
}

async function redisCounters (redis: Redis): Promise<{ calls: number, bytes: number }> {
  const stats = await redis.info('stats')
  const commands = await redis.info('commandstats')
  const field = (name: string): number => Number(new RegExp(`${name}:(\\d+)`).exec(stats)?.[1] ?? 0)
  const calls = [...commands.matchAll(/calls=(\d+)/g)].reduce((sum, m) => sum + Number(m[1]), 0)
  return { calls, bytes: field('total_net_input_bytes') + field('total_net_output_bytes') }
}

async function main (): Promise<void> {
  const teardowns: Array<() => unknown> = []
  const { url: redisUrl } = await startRedis({ teardown: fn => teardowns.push(fn) })
  const a = await startNode('holder', redisUrl)
  const b = await startNode('forwarder', redisUrl)
  await a.app.rendezvous.registry.add({ id: ID, secret: SECRET })
  await new Promise(resolve => setTimeout(resolve, 300))
  const stop = hiddenPool(a.port)
  while (a.app.rendezvous.parkedFor(ID) < POOL) await new Promise(resolve => setTimeout(resolve, 20))
  const probe = new Redis(redisUrl)
  const rows = []
  for (const [name, port] of [['local (A)', a.port], ['forwarded (B -> A)', b.port]] as const) {
    const before = await redisCounters(probe)
    const r = await load(port)
    const after = await redisCounters(probe)
    const pct = (p: number): string => (r.latencies[Math.min(r.latencies.length - 1, Math.floor(r.latencies.length * p))] ?? NaN).toFixed(2)
    rows.push({
      scenario: name,
      'rendezvous/s': Math.round(r.count / SECONDS),
      errors: r.errors,
      'p50 ms': pct(0.5),
      'p99 ms': pct(0.99),
      // Includes the hidden pool's re-park (one SET NX per CONNECT) and the presence updates.
      'redis cmds/rdv': ((after.calls - before.calls) / Math.max(1, r.count)).toFixed(1),
      'redis bytes/rdv': Math.round((after.bytes - before.bytes) / Math.max(1, r.count))
    })
  }
  console.table(rows)
  console.log(`seconds=${SECONDS} concurrency=${CONCURRENCY} pool=${POOL} node=${process.version}`)
  stop()
  probe.disconnect()
  await a.app.close()
  await b.app.close()
  for (const fn of teardowns.reverse()) await fn()
}

main().catch(err => {
  console.error(err)
  process.exit(1)
})
