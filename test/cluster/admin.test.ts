import t from 'tap'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildProblem } from '../helpers/cli'
import { until } from '../helpers/until'
import { addClusterId, startNodeProcess } from './cli-helpers'
import { connectStatus } from './nodes'
import { redisMissing, startRedis } from './redis-server'

// Two `rendezvous serve --redis` processes, the admin API on one of them, real CONNECTs over TLS.

// Skipped only where redis-server is not installed; .ci/run installs it.
const skip = redisMissing() ?? false
const TOKEN = 'cluster-admin-token-0123456789'

async function api (base: string, method: string, path: string, body?: unknown): Promise<{ status: number, body: any }> {
  const res = await fetch(base + path.slice(1), {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body)
  })
  return { status: res.status, body: await res.json().catch(() => undefined) }
}

t.test('serve --redis with the admin API: rotation answers 200, and every node takes the new secret at once', { skip }, async t => {
  const problem = buildProblem(t)
  if (problem !== undefined) throw new Error(problem)
  const scratch = await mkdtemp(join(tmpdir(), 'rendezvous-cluster-admin-'))
  t.teardown(async () => { await rm(scratch, { recursive: true, force: true }) })
  const tokenFile = join(scratch, 'admin-token')
  await writeFile(tokenFile, `${TOKEN}\n`, { mode: 0o600 })
  const redis = await startRedis(t)
  const [a, b] = await Promise.all([
    startNodeProcess(t, redis.url, join(scratch, 'a'), ['--admin-listen', '127.0.0.1:0', '--admin-token-file', tokenFile]),
    startNodeProcess(t, redis.url, join(scratch, 'b'))
  ])
  const [, admin] = await a!.proc.waitFor(/Admin page and API: (http:\/\/127\.0\.0\.1:\d+\/)/)
  const creds = await addClusterId(t, redis.url)
  const connect = async (port: number, secret: string): Promise<number | undefined> => await connectStatus(port, true, creds.id, secret)
  await until(async () => await connect(b!.port, creds.secret) === 200, 5000, 'the ID on b')

  const rotated = await api(admin!, 'POST', `/api/ids/${creds.id}/rotate`, { overlapSeconds: 60 })
  t.equal(rotated.status, 200, `not 501: ${JSON.stringify(rotated.body)}`)
  t.match(rotated.body, { id: creds.id, secret: /^[A-Z2-7]{32,}$/, otpauth: /^otpauth:\/\/totp\//, previousSecretUntil: /^\d{4}-/, agentCommand: /--secret [A-Z2-7]+/ })
  const fresh = rotated.body.secret as string
  t.not(fresh, creds.secret)
  t.equal(await connect(a!.port, fresh), 200, 'the node that rotated takes the new secret as soon as it answered')
  // The periodic re-read runs every 5 s; well within it, b has the change by pub/sub.
  const took = await until(async () => await connect(b!.port, fresh) === 200, 2000, 'the new secret on b')
  t.comment(`b took the new secret after ${took} ms`)
  t.equal(await connect(a!.port, creds.secret), 200, 'the old secret parks on a during the overlap')
  t.equal(await connect(b!.port, creds.secret), 200, 'and on b')

  const listed = await api(admin!, 'GET', '/api/ids')
  t.match(listed.body.ids, [{ id: creds.id, previousSecretUntil: rotated.body.previousSecretUntil }])

  const cut = await api(admin!, 'POST', `/api/ids/${creds.id}/rotate`, { overlapSeconds: 0 })
  t.equal(cut.status, 200)
  t.equal(cut.body.previousSecretUntil, null)
  await until(async () => await connect(b!.port, cut.body.secret as string) === 200, 2000, 'the third secret on b')
  t.equal(await connect(b!.port, fresh), 401, 'overlap 0: the secret it replaced is refused at once')
  t.equal(await connect(a!.port, creds.secret), 401, 'and every older one, on every node: overlap 0 revokes them all')
  t.equal(await connect(b!.port, creds.secret), 401)
  t.equal((await api(admin!, 'POST', '/api/ids/nobody/rotate', {})).status, 404)
})
