import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer, type AddressInfo } from 'node:net'
import { createV1Token } from '../../lib/tokens/v1'
import { buildProblem, runCli, startCli } from '../helpers/cli'
import { openWire, relayOnce, statusOf } from '../helpers/wire'

const TOKEN = 'serve-admin-token-0123456789'

function tempDir (t: { teardown: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'rendezvous-ops-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

async function api (base: string, method: string, path: string, body?: unknown, token = TOKEN): Promise<{ status: number, body: any }> {
  const res = await fetch(base + path.slice(1), {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body)
  })
  return { status: res.status, body: await res.json().catch(() => undefined) }
}

const problem = buildProblem(t)
if (problem !== undefined) {
  t.fail(problem)
} else {
  t.test('serve from a config file, env and flags: readiness, metrics and admin listeners, and logs without secrets', async t => {
    const dir = tempDir(t)
    const dataDir = join(dir, 'data')
    const tokenFile = join(dir, 'admin-token')
    writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 })
    const config = join(dir, 'serve.json')
    writeFileSync(config, JSON.stringify({
      noTls: true,
      port: 0,
      dataDir,
      healthPath: '/file-health',
      readyPath: '/file-ready',
      logLevel: 'trace',
      adminListen: '127.0.0.1:0',
      adminTokenFile: tokenFile,
      metricsListen: '127.0.0.1:0'
    }))
    const proc = startCli(t, ['serve', '--config', config, '--health-path', '/flag-health'], { env: { RENDEZVOUS_HEALTH_PATH: '/env-health', RENDEZVOUS_READY_PATH: '/env-ready' } })
    const [, url, port] = await proc.waitFor(/listening on (http:\/\/127\.0\.0\.1:(\d+)\/)/)
    const [, admin] = await proc.waitFor(/Admin page and API: (http:\/\/127\.0\.0\.1:\d+\/)/)
    const [, metricsUrl] = await proc.waitFor(/Metrics: (http:\/\/127\.0\.0\.1:\d+\/metrics)/)

    t.equal((await fetch(`${url}flag-health`)).status, 200, 'the flag wins')
    t.equal((await fetch(`${url}env-health`)).status, 401, 'over the variable')
    t.equal((await fetch(`${url}env-ready`)).status, 200, 'the variable wins over the file')
    t.equal((await fetch(`${url}file-ready`)).status, 401)
    t.equal((await fetch(`${url}metrics`)).status, 401, 'metrics are not on the public port')
    const scraped = await fetch(metricsUrl)
    t.equal(scraped.status, 200)
    const text = await scraped.text()
    t.match(text, /^rendezvous_parked_ids 0$/m)
    t.match(text, /^rendezvous_process_cpu_user_seconds_total /m)

    t.equal((await api(admin, 'GET', '/api/ids', undefined, 'wrong-token-wrong-token')).status, 401)
    const added = await api(admin, 'POST', '/api/ids', { id: 'hub-ops' })
    t.equal(added.status, 201)
    t.match(added.body.agentCommand, `--server http://127.0.0.1:${port}/ --id=hub-ops`)
    const unknown = await openWire(Number(port), false)
    unknown.write('GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="nobody-here"\r\n\r\n')
    await unknown.untilClosed()
    t.equal(statusOf(unknown.text), 404)
    const listed = await runCli(t, ['ids', 'list', '--data-dir', dataDir, '--json'])
    t.match(listed.stdout, '"hub-ops"', 'the ids command sees the admin\'s change')

    const token = createV1Token('hub-ops', added.body.secret)
    const hidden = await openWire(Number(port), false)
    hidden.write(`CONNECT uuid:hub-ops?response=${token} HTTP/1.1\r\nHost: h\r\n\r\n`)
    await hidden.untilText('200 OK\r\n\r\n')
    hidden.received = Buffer.alloc(0)
    const client = await openWire(Number(port), false)
    await relayOnce(client, hidden, 'GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="hub-ops", response="0123456789abcdef0123456789abcdef"\r\n\r\n',
      'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok', 'ok')
    const rotated = await api(admin, 'POST', '/api/ids/hub-ops/rotate', { overlapSeconds: 1 })
    t.equal(rotated.status, 200)
    t.equal((await api(admin, 'DELETE', '/api/ids/hub-ops')).status, 200)

    t.same(await proc.stop('SIGTERM'), { code: 0, signal: null })
    const logs = proc.output()
    t.match(logs, /"msg":"parked"/)
    t.match(logs, /"msg":"relaying"/)
    t.match(logs, /"msg":"relay closed"/)
    t.match(logs, /"plugin":"rendezvous","side":"mobile","reqId":"[0-9a-f]{16}",[^\n]*"method":"GET","url":"\/[^\n]*"outcome":"unknown_id","status":404,"msg":"rendezvous request refused"/, 'the 404 is a refusal line like the others, with the method and URL')
    // At info, no two lines for every probe, scrape and challenge: Fastify's own are at debug (this log is at trace).
    t.match(logs, /"level":20,[^\n]*"msg":"incoming request"/)
    // The admin listener keeps its own at info: each of its requests is an operator's action.
    t.notMatch(logs, /"level":30,(?![^\n]*rendezvous-admin)[^\n]*"msg":"(incoming request|request completed)"/)
    for (const secret of [TOKEN, added.body.secret, rotated.body.secret, token, '0123456789abcdef0123456789abcdef', 'wrong-token-wrong-token']) {
      t.notOk(logs.includes(secret), `no ${String(secret).slice(0, 6)}… in the logs`)
    }
    t.notMatch(logs, /authorization/i)
  })

  t.test('bad operations options are refused in one line before anything starts', async t => {
    const dir = tempDir(t)
    const short = join(dir, 'short')
    writeFileSync(short, 'too-short\n')
    const cases: Array<[string[], NodeJS.ProcessEnv, RegExp]> = [
      [['--admin-listen', '127.0.0.1:0'], {}, /^rendezvous: --admin-listen needs --admin-token-file\n$/],
      [['--admin-listen', '127.0.0.1:0', '--admin-token-file', join(dir, 'none')], {}, /--admin-token-file .*none: no such file\n$/],
      [['--admin-listen', '127.0.0.1:0', '--admin-token-file', short], {}, /must hold a token of 16 characters or more/],
      [['--admin-listen', 'nowhere', '--admin-token-file', short], {}, /--admin-listen must be HOST:PORT/],
      [[], { RENDEZVOUS_MAX_PARKED: 'lots' }, /^rendezvous: RENDEZVOUS_MAX_PARKED must be an integer from 1 to 10000000, got "lots"\n$/],
      [['--no-metrics', '--metrics-listen', '127.0.0.1:0'], {}, /--no-metrics cannot be combined with --metrics-listen/]
    ]
    for (const [args, env, pattern] of cases) {
      const res = await runCli(t, ['serve', '--no-tls', '--port', '0', '--data-dir', join(dir, 'data'), ...args], { env })
      t.equal(res.code, 2, `${args.join(' ')} ${JSON.stringify(env)}: ${res.stderr}`)
      t.match(res.stderr, pattern)
      t.equal(res.stderr.split('\n').filter(Boolean).length, 1, 'one line')
      t.notMatch(res.stderr, 'too-short', 'the token is never echoed')
    }
  })

  t.test('two listeners on one port are refused up front, exit 2, whichever two they are', async t => {
    const dir = tempDir(t)
    const token = join(dir, 'token')
    writeFileSync(token, TOKEN + '\n', { mode: 0o600 })
    // A port held here: a serve that tried to listen on it would fail with EADDRINUSE (exit 1) instead.
    const held = createServer()
    await new Promise<void>(resolve => held.listen(0, '127.0.0.1', resolve))
    t.teardown(() => { held.close() })
    const port = String((held.address() as AddressInfo).port)
    const admin = ['--admin-listen', `127.0.0.1:${port}`, '--admin-token-file', token]
    const metrics = ['--metrics-listen', `127.0.0.1:${port}`]
    const cluster = ['--redis', 'redis://127.0.0.1:1', '--cluster-secret', 'cluster-secret-0123456789', '--peer-port', port]
    const cases: Array<[string[], string]> = [
      [['--port', port, ...metrics], '--metrics-listen must be another port than --port'],
      [['--port', port, ...admin], '--admin-listen must be another port than --port'],
      [['--port', '0', ...admin, ...metrics], '--metrics-listen must be another port than --admin-listen'],
      [['--port', port, ...cluster], '--peer-port must be another port than --port'],
      [['--port', '0', ...metrics, ...cluster], '--peer-port must be another port than --metrics-listen']
    ]
    for (const [args, message] of cases) {
      const res = await runCli(t, ['serve', '--no-tls', '--host', '127.0.0.1', '--data-dir', join(dir, 'data'), ...args])
      t.same([res.code, res.stderr], [2, `rendezvous: ${message}\n`], args.join(' '))
    }
  })
}
