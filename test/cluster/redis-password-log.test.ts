import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { until } from '../helpers/until'
import { LogLines } from './log-lines'
import { startNode } from './nodes'
import { freePort, redisMissing } from './redis-server'

// Skipped only where redis-server is not installed; .ci/run installs it.
const skip = redisMissing() ?? false

/** A redis-server on `port` that requires `password`; resolves once it accepts connections. */
async function redisWithPassword (port: number, password: string, dir: string): Promise<ChildProcess> {
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--requirepass', password], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => { out += chunk })
  await until(() => out.includes('Ready to accept connections'), 15_000, 'redis-server ready')
  return proc
}

/*
 * A Redis that comes back with another password refuses every reconnection
 * (WRONGPASS), and ioredis retries quietly: the node said only that the
 * connection was down, at any level, however long it lasted. Now the reason
 * is a warning, once a minute, and the password is in no line.
 */
t.test('a Redis that comes back refusing the password: the reason is logged once, without the password', { skip }, async t => {
  const dir = await mkdtemp(join(tmpdir(), 'rendezvous-redis-pw-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  const port = await freePort()
  const password = 'first-pass-PW7Q'
  let redis = await redisWithPassword(port, password, dir)
  t.teardown(() => { redis.kill('SIGKILL') })
  const log = new LogLines()
  const a = await startNode('a', `redis://:${password}@127.0.0.1:${port}`, {}, log)
  t.teardown(async () => { await a.close() })

  redis.kill('SIGKILL')
  await once(redis, 'close')
  await until(() => !a.app.rendezvous.reachable(), 5000, 'a sees Redis go')
  redis = await redisWithPassword(port, 'another-pass-X2', dir)
  await until(() => log.find('a connection to Redis failed').some(l => /WRONGPASS/.test(String(l.reason))), 10_000, 'the line saying why')
  // ioredis retries every 2 s at most: a few more attempts, each refused alike.
  await new Promise(resolve => setTimeout(resolve, 4500))
  const refusals = log.find('a connection to Redis failed').filter(l => /WRONGPASS/.test(String(l.reason)))
  t.same(refusals.map(l => [l.level, l.node]), [[40, 'a']], 'one warning for all the refused attempts')
  t.notOk(a.app.rendezvous.reachable(), 'still not reachable')
  t.notMatch(log.raw.join('\n'), password, 'the password is in no line')
})
