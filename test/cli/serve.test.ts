import { X509Certificate } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import { createServer, type AddressInfo, type Server } from 'node:net'
import { join } from 'node:path'
import type { TLSSocket } from 'node:tls'
import t from 'tap'
import { assertOneLineError, tempDir } from '../helpers/serve-cli'
import { buildProblem, runCli, startCli } from '../helpers/cli'
import { tlsCert, tlsCertPath, tlsKeyPath } from '../helpers/tls'

const LISTENING = /listening on (https?:\/\/127\.0\.0\.1:(\d+)\/)/
const FINGERPRINT = /SHA-256 fingerprint\s+([0-9A-F]{2}(?::[0-9A-F]{2}){31})/

interface Got { status: number, headers: http.IncomingHttpHeaders, body: string, fingerprint?: string }

function get (url: string, opts: { ca?: Buffer, headers?: http.OutgoingHttpHeaders, agent?: http.Agent } = {}): Promise<Got> {
  const client = url.startsWith('https:') ? https : http
  return new Promise((resolve, reject) => {
    const req = client.get(url, { ca: opts.ca, headers: opts.headers, agent: opts.agent ?? false }, res => {
      const socket = res.socket as TLSSocket
      const fingerprint = typeof socket.getPeerCertificate === 'function' ? socket.getPeerCertificate().fingerprint256 : undefined
      let body = ''
      res.setEncoding('utf8').on('data', (chunk: string) => { body += chunk })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, fingerprint }))
    })
    req.on('error', reject)
  })
}

const problem = buildProblem(t)
if (problem !== undefined) {
  t.fail(problem)
} else {
  t.test('first start generates a certificate, serves /healthz and /metrics over TLS, SIGTERM exits 0', async t => {
    const dataDir = tempDir(t)
    const proc = startCli(t, ['serve', '--port', '0', '--data-dir', dataDir])
    const [, url] = await proc.waitFor(LISTENING)
    const certPath = join(dataDir, 'tls', 'cert.pem')
    const certPem = readFileSync(certPath)
    const printed = FINGERPRINT.exec(proc.stdout())?.[1]
    t.equal(printed, new X509Certificate(certPem).fingerprint256, 'printed fingerprint is the file\'s')
    t.match(proc.stdout(), `node dist/cli/main.js ids add --data-dir ${dataDir}`)
    t.match(proc.stdout(), `node dist/cli/main.js agent --server ${url} --id ID --secret SECRET --to http://127.0.0.1:PORT --ca ${certPath}`)
    t.match(proc.stdout(), `curl --digest -u ID:x --cacert ${certPath} ${url}`)
    t.equal(statSync(join(dataDir, 'tls', 'key.pem')).mode & 0o777, 0o600, 'key is private')
    t.equal(statSync(join(dataDir, 'tls')).mode & 0o777, 0o700, 'tls dir is private')

    const health = await get(`${url}healthz`, { ca: certPem })
    t.equal(health.status, 200)
    t.equal(health.fingerprint, printed, 'the server presents the printed certificate')
    const body = JSON.parse(health.body)
    t.equal(body.status, 'ok')
    for (const key of ['parked', 'waiting', 'spliced']) t.equal(typeof body[key], 'number', `healthz has ${key}`)

    const metrics = await get(`${url}metrics`, { ca: certPem })
    t.equal(metrics.status, 200)
    t.match(metrics.headers['content-type'], /^text\/plain/)
    t.match(metrics.body, /^rendezvous_process_cpu_user_seconds_total /m, 'default metrics carry the prefix')
    t.match(metrics.body, /^rendezvous_parked_connections /m, 'the plugin\'s metrics are on the same registry')
    t.notMatch(metrics.body, /^(?!#)(?!rendezvous_)\w+/m, 'every metric name begins with rendezvous_')

    const challenge = await get(`${url}anything`, { ca: certPem })
    t.equal(challenge.status, 401, 'the plugin challenges unknown routes')
    t.match(challenge.headers['www-authenticate'], /^Digest realm="rendezvous"/)

    t.same(await proc.stop('SIGTERM'), { code: 0, signal: null })
    t.notMatch(proc.stderr(), /\S/, 'nothing on stderr')
  })

  t.test('a second start reuses the certificate', async t => {
    const dataDir = tempDir(t)
    const first = startCli(t, ['serve', '--port', '0', '--data-dir', dataDir])
    await first.waitFor(LISTENING)
    const fingerprint = FINGERPRINT.exec(first.stdout())?.[1]
    t.match(first.stdout(), /generated now/)
    t.same(await first.stop(), { code: 0, signal: null })
    const before = readFileSync(join(dataDir, 'tls', 'cert.pem'))

    const second = startCli(t, ['serve', '--port', '0', '--data-dir', dataDir])
    const [, url] = await second.waitFor(LISTENING)
    t.equal(FINGERPRINT.exec(second.stdout())?.[1], fingerprint)
    t.notMatch(second.stdout(), /generated now/)
    t.same(readFileSync(join(dataDir, 'tls', 'cert.pem')), before, 'file untouched')
    t.equal((await get(`${url}healthz`, { ca: before })).fingerprint, fingerprint)
    t.same(await second.stop('SIGINT'), { code: 0, signal: null }, 'SIGINT closes gracefully too')
  })

  t.test('--no-tls serves plain HTTP and makes no certificate', async t => {
    const dataDir = tempDir(t)
    const proc = startCli(t, ['serve', '--port', '0', '--data-dir', dataDir, '--no-tls'])
    const [, url] = await proc.waitFor(LISTENING)
    t.match(url, /^http:/)
    t.notMatch(proc.stdout(), /fingerprint|--ca|--cacert/)
    t.equal((await get(`${url}healthz`)).status, 200)
    t.notOk(existsSync(join(dataDir, 'tls')), 'no tls directory')
    t.same(await proc.stop(), { code: 0, signal: null })
  })

  t.test('--host takes an IPv6 address bare or in brackets, and the banner writes it as URLs do', async t => {
    for (const host of ['::1', '[::1]']) {
      const proc = startCli(t, ['serve', '--port', '0', '--data-dir', tempDir(t), '--no-tls', '--host', host])
      const [, url] = await proc.waitFor(/listening on (http:\/\/\[::1\]:\d+\/)/)
      t.equal((await get(`${url}healthz`)).status, 200, `--host ${host}`)
      t.same(await proc.stop(), { code: 0, signal: null })
    }
  })

  t.test('a keep-alive client does not hold up SIGTERM', async t => {
    const proc = startCli(t, ['serve', '--port', '0', '--data-dir', tempDir(t), '--no-tls'])
    const [, url] = await proc.waitFor(LISTENING)
    const agent = new http.Agent({ keepAlive: true })
    t.teardown(() => agent.destroy())
    t.equal((await get(`${url}healthz`, { agent })).status, 200)
    t.same(await proc.stop('SIGTERM', 4_000), { code: 0, signal: null })
  })

  t.test('--tls-cert and --tls-key serve the given pair', async t => {
    const proc = startCli(t, ['serve', '--port', '0', '--data-dir', tempDir(t), '--tls-cert', tlsCertPath, '--tls-key', tlsKeyPath])
    const [, url] = await proc.waitFor(LISTENING)
    const fingerprint = new X509Certificate(tlsCert).fingerprint256
    t.equal(FINGERPRINT.exec(proc.stdout())?.[1], fingerprint)
    t.equal((await get(`${url}healthz`, { ca: tlsCert })).fingerprint, fingerprint)
    t.same(await proc.stop(), { code: 0, signal: null })
  })

  t.test('--metrics-path moves the metrics, --no-metrics removes them', async t => {
    const moved = startCli(t, ['serve', '--port', '0', '--data-dir', tempDir(t), '--no-tls', '--metrics-path', '/internal/prom'])
    const [, movedUrl] = await moved.waitFor(LISTENING)
    t.match((await get(`${movedUrl}internal/prom`)).body, /^rendezvous_/m)
    t.equal((await get(`${movedUrl}metrics`)).status, 401, '/metrics is an ordinary unknown route now')
    t.same(await moved.stop(), { code: 0, signal: null })

    const none = startCli(t, ['serve', '--port', '0', '--data-dir', tempDir(t), '--no-tls', '--no-metrics'])
    const [, noneUrl] = await none.waitFor(LISTENING)
    t.equal((await get(`${noneUrl}metrics`)).status, 401)
    t.equal((await get(`${noneUrl}healthz`)).status, 200)
    t.same(await none.stop(), { code: 0, signal: null })
  })

  t.test('--wait-timeout is in seconds and reaches the plugin', async t => {
    const dataDir = tempDir(t)
    const added = await runCli(t, ['ids', 'add', '--data-dir', dataDir, '--json'])
    t.equal(added.code, 0, added.stderr)
    const { id } = JSON.parse(added.stdout) as { id: string }
    const proc = startCli(t, ['serve', '--port', '0', '--data-dir', dataDir, '--no-tls', '--wait-timeout', '1'])
    const [, url] = await proc.waitFor(LISTENING)
    const started = Date.now()
    const res = await get(url, { headers: { authorization: `Basic ${Buffer.from(`${id}:x`).toString('base64')}` } })
    const waited = Date.now() - started
    t.equal(res.status, 503, 'no hidden server parked')
    t.ok(res.headers['retry-after'], 'with Retry-After')
    t.ok(waited >= 800 && waited < 5_000, `waited about a second, not the default ten: ${waited} ms`)
    t.same(await proc.stop(), { code: 0, signal: null })
  })

  t.test('a port in use is a one-line error', async t => {
    const blocker: Server = createServer()
    await new Promise<void>(resolve => blocker.listen(0, '127.0.0.1', resolve))
    t.teardown(() => { blocker.close() })
    const { port } = blocker.address() as AddressInfo
    const dataDir = tempDir(t)
    const res = await runCli(t, ['serve', '--port', String(port), '--data-dir', dataDir, '--no-tls'])
    assertOneLineError(t, res, new RegExp(`127\\.0\\.0\\.1:${port}.*already in use`))
    t.same(readdirSync(dataDir).filter(name => name.includes('journal')), [], 'it accepted no token: no replay journal left behind')
  })

  t.test('serve --help prints the options and exits 0', async t => {
    const res = await runCli(t, ['serve', '--help'])
    t.equal(res.code, 0)
    for (const flag of ['--host', '--port', '--data-dir', '--tls-cert', '--tls-key', '--no-tls', '--wait-timeout', '--metrics-path', '--no-metrics', '--log-level']) {
      t.match(res.stdout, flag)
    }
  })
}
