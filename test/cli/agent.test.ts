import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import net from 'node:net'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { runAgent } from '../../lib/cli/agent'
import { agentLogger } from '../../lib/cli/agent-log'
import { startRendezvous } from '../helpers/rendezvous'
import { otherCert, otherKey, tlsCertPath, tlsKeyPath } from '../helpers/tls'
import { restoreEnvAfter } from '../helpers/fixtures'
import { FakeRendezvous, TEST_ID, TEST_SECRET } from '../agent/fake-rendezvous'
import { echoServer, readAll } from '../agent/helpers'
import { until } from '../helpers/until'

type Test = Parameters<Parameters<typeof t.test>[0]>[0]

function io (env: NodeJS.ProcessEnv = {}): { out: () => string, err: () => string, io: Parameters<typeof runAgent>[1] } {
  let out = ''
  let err = ''
  const sink = (append: (s: string) => void): Writable => new Writable({ write (chunk, _enc, cb) { append(String(chunk)); cb() } })
  return {
    out: () => out,
    err: () => err,
    io: { stdout: sink((s) => { out += s }), stderr: sink((s) => { err += s }), env }
  }
}

const BASE = ['--server', 'https://127.0.0.1:1', '--id', TEST_ID, '--to', 'http://127.0.0.1:2']

t.test('--help prints the usage and exits 0', async (t) => {
  const c = io()
  t.equal(await runAgent(['--help'], c.io), 0)
  t.match(c.out(), /^usage: rendezvous agent --server URL --id ID --secret BASE32 --to URL/)
})

t.test('bad command lines: one line on stderr, exit 2', async (t) => {
  const cases: Array<[string[], NodeJS.ProcessEnv, RegExp]> = [
    [[...BASE, '--secret', TEST_SECRET, '--bogus'], {}, /unknown option --bogus for agent/],
    [BASE, {}, /missing --secret \(or RENDEZVOUS_SECRET\)/],
    [['--id', TEST_ID], { RENDEZVOUS_SECRET: TEST_SECRET }, /missing --server, --to/],
    [[...BASE, '--ca', '/nonexistent/ca.pem'], { RENDEZVOUS_SECRET: TEST_SECRET }, /cannot read --ca \/nonexistent\/ca\.pem: ENOENT/],
    [[...BASE, '--ca', tlsCertPath, '--insecure'], { RENDEZVOUS_SECRET: TEST_SECRET }, /--ca and --insecure contradict/],
    [[...BASE, '--pool', '0'], { RENDEZVOUS_SECRET: TEST_SECRET }, /--pool must be a whole number/],
    [[...BASE, '--pool', '1025'], { RENDEZVOUS_SECRET: TEST_SECRET }, /^rendezvous: agent: --pool must be an integer from 1 to 1024\n$/],
    [[...BASE, '--max-age', 'soon'], { RENDEZVOUS_SECRET: TEST_SECRET }, /--max-age must be a number of seconds/],
    [[...BASE, '--backoff-max', '0'], { RENDEZVOUS_SECRET: TEST_SECRET }, /--backoff-max must be a number of seconds above 0/],
    [[...BASE, '--secret', 'TOOSHORT'], {}, /--secret must be base32/],
    [['--server', 'ftp://x', '--id', TEST_ID, '--to', 'http://127.0.0.1:2'], { RENDEZVOUS_SECRET: TEST_SECRET }, /--server must be https:\/\/ or http:\/\//],
    [['--server', 'https://user:pw@relay.test:8443/rendezvous', '--id', TEST_ID, '--to', 'http://127.0.0.1:2'], { RENDEZVOUS_SECRET: TEST_SECRET }, /^rendezvous: agent: --server takes no path or query, only the scheme, host and port: https:\/\/relay\.test:8443\n$/],
    [['--server', 'http://relay.test/?id=x', '--id', TEST_ID, '--to', 'http://127.0.0.1:2'], { RENDEZVOUS_SECRET: TEST_SECRET }, /--server takes no path or query/],
    [[...BASE.slice(0, 4), '--to', 'ftp://127.0.0.1:2'], { RENDEZVOUS_SECRET: TEST_SECRET }, /--to must be an http:\/\/ or https:\/\/ URL/],
    [['--server', 'https://127.0.0.1:0', '--id', TEST_ID, '--to', 'http://127.0.0.1:2'], { RENDEZVOUS_SECRET: TEST_SECRET }, /^rendezvous: agent: --server has port 0, which no server listens on: https:\/\/127\.0\.0\.1:0\n$/],
    [[...BASE.slice(0, 4), '--to', 'http://127.0.0.1:0'], { RENDEZVOUS_SECRET: TEST_SECRET }, /^rendezvous: agent: --to has port 0, which no server listens on: http:\/\/127\.0\.0\.1:0\n$/],
    [[...BASE, '--to-insecure'], { RENDEZVOUS_SECRET: TEST_SECRET }, /^rendezvous: agent: --to-insecure applies only to an https:\/\/ local service, not http:\/\/\n$/],
    [[...BASE, '--to-ca', tlsCertPath], { RENDEZVOUS_SECRET: TEST_SECRET }, /^rendezvous: agent: --to-ca applies only to an https:\/\/ local service, not http:\/\/\n$/]
  ]
  for (const [args, env, message] of cases) {
    const c = io(env)
    t.equal(await runAgent(args, c.io), 2, args.join(' '))
    t.match(c.err(), message)
    t.equal(c.err().trim().split('\n').length, 1, 'one line')
    t.notMatch(c.err(), /\n\s+at /, 'no stack trace')
  }
})

t.test('refused credentials: exit 1 with a clear message, the secret never printed', async (t) => {
  const fake = await new FakeRendezvous({ id: TEST_ID, secret: TEST_SECRET }).listen()
  t.teardown(() => fake.close())
  const wrong = 'MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43UOV3HO6DZ'
  const c = io({ RENDEZVOUS_SECRET: wrong })
  const code = await runAgent(['--server', fake.url, '--id', TEST_ID, '--to', 'http://127.0.0.1:2', '--ca', tlsCertPath], c.io)
  t.equal(code, 1)
  t.match(c.err(), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ERROR the rendezvous refused the credentials for ID .* \(401\): check the ID and the secret/m)
  t.equal(fake.connects.length, 1)
  t.notMatch(c.out() + c.err(), wrong)
})

t.test('--insecure warns on stderr', async (t) => {
  const fake = await new FakeRendezvous({ id: TEST_ID, secret: TEST_SECRET, key: otherKey, cert: otherCert, answer: () => ({ kind: 'refuse', status: 403 }) }).listen()
  t.teardown(() => fake.close())
  const c = io({ RENDEZVOUS_SECRET: TEST_SECRET })
  t.equal(await runAgent(['--server', fake.url, '--id', TEST_ID, '--to', 'http://127.0.0.1:2', '--insecure'], c.io), 1)
  t.match(c.err(), /^\d{4}-\d\d-\d\dT[\d:.]+Z WARN TLS certificate verification is OFF/m)
})

t.test('a certificate rejected on the first attempt: one line with the kind and both fingerprints, exit 3', async (t) => {
  const fake = await new FakeRendezvous({ id: TEST_ID, secret: TEST_SECRET }).listen()
  t.teardown(() => fake.close())
  const c = io({ RENDEZVOUS_SECRET: TEST_SECRET })
  t.equal(await runAgent(['--server', fake.url, '--id', TEST_ID, '--to', 'http://127.0.0.1:2'], c.io), 3)
  const lines = c.err().trim().split('\n')
  t.equal(lines.length, 1, c.err())
  t.match(lines[0], /^\d{4}-\d\d-\d\dT[\d:.]+Z ERROR the rendezvous certificate is rejected: unknown issuer \(DEPTH_ZERO_SELF_SIGNED_CERT\): give the rendezvous certificate or its CA with --ca FILE \(the library's ca option\); it presented SHA-256 ([0-9A-F]{2}:){31}[0-9A-F]{2}, expected a CA this system trusts$/)
  t.equal(fake.connects.length, 0)
})

t.test('a RENDEZVOUS_SPLICE that names no data path: one line on stderr, exit 2', async (t) => {
  restoreEnvAfter(t, 'RENDEZVOUS_SPLICE')
  // Read from the process's environment, where the data path is chosen.
  process.env.RENDEZVOUS_SPLICE = 'JS'
  const c = io({ RENDEZVOUS_SECRET: TEST_SECRET })
  t.equal(await runAgent(BASE, c.io), 2)
  t.equal(c.err(), 'rendezvous: agent: RENDEZVOUS_SPLICE must be auto, native or js, got "JS"\n')
})

t.test('--ca and --to-ca must hold a certificate: a private key or garbage is a one-line error, exit 2', async (t) => {
  const dir = t.testdir({ 'garbage.pem': 'not a certificate\n' })
  for (const [flag, file, pattern] of [
    ['--ca', tlsKeyPath, /agent: --ca .*key\.pem holds a private key, not a certificate/],
    ['--ca', join(dir, 'garbage.pem'), /agent: --ca .*garbage\.pem holds no PEM certificate/],
    ['--to-ca', join(dir, 'garbage.pem'), /agent: --to-ca .*garbage\.pem holds no PEM certificate/]
  ] as Array<[string, string, RegExp]>) {
    const c = io({ RENDEZVOUS_SECRET: TEST_SECRET })
    t.equal(await runAgent([...BASE, flag, file], c.io), 2, flag)
    t.match(c.err(), pattern)
    t.equal(c.err().trim().split('\n').length, 1)
  }
  const c = io({ RENDEZVOUS_SECRET: TEST_SECRET })
  t.equal(await runAgent([...BASE, '--log-level', 'loud'], c.io), 2)
  t.match(c.err(), /--log-level must be one of error, warn, info, debug, got "loud"/)
})

/** The agent as its own process, in front of a fake rendezvous and an echo backend. */
async function spawnAgent (t: Test, flags: string[]): Promise<{ child: ReturnType<typeof spawn>, fake: FakeRendezvous, echo: Awaited<ReturnType<typeof echoServer>> }> {
  const fake = await new FakeRendezvous({ id: TEST_ID, secret: TEST_SECRET }).listen()
  const echo = await echoServer()
  t.teardown(() => fake.close())
  t.teardown(() => echo.server.close())
  const script = `require(${JSON.stringify(join(__dirname, '../../lib/cli/agent'))}).runAgent(process.argv.slice(1), process)
    .then((code) => { process.exitCode = code })`
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', script, '--',
    '--server', fake.url, '--id', TEST_ID, '--to', echo.url, '--ca', tlsCertPath, ...flags], {
    env: { ...process.env, RENDEZVOUS_SECRET: TEST_SECRET },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  return { child, fake, echo }
}

t.test('SIGHUP closes it as SIGTERM does, with a line, and exits 0', async (t) => {
  const { child, fake } = await spawnAgent(t, ['--pool', '1'])
  let out = ''
  child.stdout!.on('data', (c: Buffer) => { out += c.toString() })
  await fake.waitParked(1, 15000)
  child.kill('SIGHUP')
  const [code, signal] = await once(child, 'exit')
  t.same([code, signal], [0, null], 'exit 0, not killed by the signal')
  t.match(out, /Z SIGHUP: closing\n.*Z closed\n$/)
})

t.test('runs until SIGTERM, logging each state change, then exits 0', async (t) => {
  const { child, fake, echo } = await spawnAgent(t, ['--pool', '2', '--log-level', 'debug'])
  let out = ''
  let err = ''
  child.stdout!.on('data', (c: Buffer) => { out += c.toString() })
  child.stderr!.on('data', (c: Buffer) => { err += c.toString() })
  await fake.waitParked(2, 15000)
  const answer = await readAll(fake.take('GET /via-cli HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'))
  t.match(answer.toString(), /^HTTP\/1\.1 200 OK/)
  await fake.waitParked(2)
  await new Promise((resolve) => setTimeout(resolve, 100))
  child.kill('SIGTERM')
  const [code] = await once(child, 'exit')
  t.equal(code, 0, err)
  t.match(out, new RegExp(`Z agent for ID ${TEST_ID} at ${fake.url}, relaying to ${echo.url} \\(pool 2\\)\n`))
  t.match(out, /Z DEBUG parked \(1\/2 waiting\)\n/)
  t.match(out, /Z GET \/via-cli relayed in \d+ ms\n/)
  t.match(out, /Z DEBUG taken by a mobile client/)
  t.match(out, /Z DEBUG relay finished/)
  t.match(out, /Z SIGTERM: closing\n.*Z closed\n$/)
  t.match(out, /Z parked the first connection: ready for mobile clients\n/)
  t.equal(out.match(/ready for mobile clients/g)?.length, 1, 'once')
  t.notMatch(out + err, TEST_SECRET)
  t.equal(echo.requests[0]?.url, '/via-cli')
})

t.test('a second signal cuts open relays and exits at once, whichever signal it is', async (t) => {
  const fake = await new FakeRendezvous({ id: TEST_ID, secret: TEST_SECRET }).listen()
  t.teardown(() => fake.close())
  // A backend that takes the request and never answers: the first signal's grace would wait for it.
  let holding = 0
  const held = net.createServer((s) => { holding++; s.on('error', () => {}) }).listen(0, '127.0.0.1')
  await once(held, 'listening')
  t.teardown(() => held.close())
  const to = `http://127.0.0.1:${(held.address() as net.AddressInfo).port}`
  for (const [first, second] of [['SIGTERM', 'SIGINT'], ['SIGTERM', 'SIGTERM']] as const) {
    const script = `require(${JSON.stringify(join(__dirname, '../../lib/cli/agent'))}).runAgent(process.argv.slice(1), process)
      .then((code) => { process.exitCode = code })`
    const child = spawn(process.execPath, ['--import', 'tsx', '-e', script, '--',
      '--server', fake.url, '--id', TEST_ID, '--to', to, '--ca', tlsCertPath, '--pool', '1'], {
      env: { ...process.env, RENDEZVOUS_SECRET: TEST_SECRET },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    t.teardown(() => { child.kill('SIGKILL') })
    let out = ''
    let err = ''
    child.stdout.on('data', (c: Buffer) => { out += c.toString() })
    child.stderr.on('data', (c: Buffer) => { err += c.toString() })
    await fake.waitParked(1, 15000)
    const before = holding
    fake.take('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n')
    await until(() => holding > before, 5000, 'the relay to reach the backend')
    child.kill(first)
    await until(() => out.includes(`${first}: closing`), 5000, 'the first signal')
    child.kill(second)
    const [code, signal] = await once(child, 'exit')
    t.same([code, signal], [1, null], `${first} then ${second}: exit 1, not killed by the signal: ${out}`)
    t.match(err, new RegExp(`WARN ${second}: closing now\\n`), 'the warning on stderr')
    t.notMatch(out, /WARN/, 'not on stdout')
  }
})

/** An in-process agent (pool 1) in front of a fake rendezvous that refuses the CONNECTs `refused` picks with 503. */
async function refusingRendezvous (t: Test, refused: (n: number) => boolean): Promise<{ fake: FakeRendezvous, c: ReturnType<typeof io>, stop: (reason: string) => void, running: Promise<number> }> {
  const fake = await new FakeRendezvous({
    id: TEST_ID, secret: TEST_SECRET, answer: (n) => refused(n) ? { kind: 'refuse', status: 503, reason: 'Service Unavailable' } : { kind: 'park' }
  }).listen()
  t.teardown(() => fake.close())
  const c = io({ RENDEZVOUS_SECRET: TEST_SECRET })
  let stop!: (reason: string) => void
  const running = runAgent(['--server', fake.url, '--id', TEST_ID, '--to', 'http://127.0.0.1:2', '--ca', tlsCertPath, '--pool', '1'],
    c.io, new Promise<string>((resolve) => { stop = resolve }))
  return { fake, c, stop, running }
}

t.test('warnings go to stderr, info lines to stdout', async (t) => {
  const { fake, c, stop, running } = await refusingRendezvous(t, (n) => n === 0)
  await fake.waitParked(1, 15000)
  await until(() => c.out().includes('parked'), 5000, 'the agent to see its 200')
  stop('SIGTERM')
  t.equal(await running, 0)
  t.match(c.err(), /Z WARN cannot park: the rendezvous answered 503 Service Unavailable\n/)
  t.notMatch(c.err(), /retrying in|SIGTERM: closing/, 'no info line on stderr')
  t.notMatch(c.out(), /WARN/, 'no warning on stdout')
  t.match(c.out(), /Z retrying in \d+\.\d s \(attempt 1\): the rendezvous answered 503[^]*Z SIGTERM: closing\n/)
  t.match(c.out(), /Z retrying in [^\n]*\n\S+Z parked the first connection after 1 failed attempt in \d+\.\d s: ready for mobile clients\n/, 'the first park, at info')
})

t.test('a request the agent answers itself (the local service is down) is a WARN line on stderr, in place of the info line', async (t) => {
  const fake = await new FakeRendezvous({ id: TEST_ID, secret: TEST_SECRET }).listen()
  t.teardown(() => fake.close())
  const closed = net.createServer().listen(0, '127.0.0.1')
  await once(closed, 'listening')
  const port = (closed.address() as net.AddressInfo).port
  await new Promise((resolve) => closed.close(resolve))
  const c = io({ RENDEZVOUS_SECRET: TEST_SECRET })
  let stop!: (reason: string) => void
  const running = runAgent(['--server', fake.url, '--id', TEST_ID, '--to', `http://127.0.0.1:${port}`, '--ca', tlsCertPath, '--pool', '1'],
    c.io, new Promise<string>((resolve) => { stop = resolve }))
  await fake.waitParked(1, 15000)
  const answer = await readAll(fake.take('GET /down?q=1 HTTP/1.1\r\nHost: x\r\n\r\n'))
  t.match(answer.toString(), /^HTTP\/1\.1 502 Bad Gateway\r\n/)
  await until(() => c.err().includes('answered 502'), 5000, 'the warning')
  stop('SIGTERM')
  t.equal(await running, 0)
  t.match(c.err(), new RegExp(`Z WARN GET /down: answered 502, the local service cannot be reached: connect ECONNREFUSED 127\\.0\\.0\\.1:${port}\n`))
  t.notMatch(c.out(), /relayed in|answered/, 'no info line for it')
})

t.test('after failures, the next park is a line at info: the agent says it is back', async (t) => {
  const { fake, c, stop, running } = await refusingRendezvous(t, (n) => n === 1 || n === 2)
  await until(() => c.out().includes('ready for mobile clients'), 15000, 'the first park')
  // Taken: the agent parks a replacement, which the rendezvous refuses twice.
  fake.take('GET / HTTP/1.1\r\nHost: x\r\n\r\n').on('error', () => {})
  await until(() => c.out().includes('parked again'), 15000, 'the park after the failures')
  stop('SIGTERM')
  t.equal(await running, 0)
  t.match(c.out(), /Z parked the first connection: ready for mobile clients\n/)
  t.match(c.out(), /attempt 2\): the rendezvous answered 503[^\n]*\n\S+Z parked again after 2 failed attempts in \d+\.\d s\n/)
  t.equal(c.out().match(/parked again/g)?.length, 1, 'one line for the recovery')
})

t.test('refused after it worked (the ID removed): exit 1 once relayed connections end, or at a signal', async (t) => {
  const fake = await new FakeRendezvous({
    id: TEST_ID, secret: TEST_SECRET, answer: (n) => n === 0 ? { kind: 'park' } : { kind: 'refuse', status: 401, reason: 'Unauthorized' }
  }).listen()
  const echo = await echoServer()
  t.teardown(() => fake.close())
  t.teardown(() => echo.server.close())
  const c = io({ RENDEZVOUS_SECRET: TEST_SECRET })
  let stop!: (reason: string) => void
  let code: number | undefined
  const running = runAgent(['--server', fake.url, '--id', TEST_ID, '--to', echo.url, '--ca', tlsCertPath, '--pool', '1'],
    c.io, new Promise<string>((resolve) => { stop = resolve })).then((n) => { code = n })
  await until(() => c.out().includes('ready for mobile clients'), 15000, 'the first park')
  fake.take('GET /kept HTTP/1.1\r\nHost: x\r\n\r\n').resume().on('error', () => {})
  await until(() => c.err().includes('now refuses the credentials'), 15000, 'the refusal')
  t.match(c.err(), /Z ERROR the rendezvous now refuses the credentials for ID \S+ \(401\), which it accepted before: the ID was removed there, or its secret changed/)
  t.match(c.out(), /Z 1 relayed connection is still open: the agent exits when it ends \(a signal cuts them\)\n/)
  // Past the 2 s a signal's close would give the relayed connection.
  await new Promise((resolve) => setTimeout(resolve, 2500))
  t.equal(code, undefined, 'still running while the relayed connection is open')
  stop('SIGTERM')
  await running
  t.equal(code, 1, 'exit 1: the credentials were refused')
  t.match(c.err(), /Z WARN SIGTERM: closing now\n/)
})

t.test('every log line is one line, whatever the message holds', async (t) => {
  const c = io()
  const log = agentLogger(c.io, 'info')
  log('warn', 'cannot park: first\nsecond:\r\n\n')
  log('info', 'relayed\n')
  t.match(c.err(), /^\S+Z WARN cannot park: first second:\n$/)
  t.match(c.out(), /^\S+Z relayed\n$/)
})

/** The first warning of an agent pointed at `scheme`:// of a relay that speaks the other scheme. */
async function firstFailure (t: Test, scheme: 'http' | 'https'): Promise<{ first: string, err: string, port: number }> {
  const relay = await startRendezvous({ tls: scheme === 'http' })
  t.teardown(() => relay.close())
  const c = io({ RENDEZVOUS_SECRET: TEST_SECRET })
  let stop!: (reason: string) => void
  const running = runAgent(['--server', `${scheme}://127.0.0.1:${relay.port}`, '--id', TEST_ID, '--to', 'http://127.0.0.1:2', '--pool', '1'],
    c.io, new Promise<string>((resolve) => { stop = resolve }))
  await until(() => c.err().includes('WARN cannot park'), 10000, 'the first failure')
  stop('SIGTERM')
  t.equal(await running, 0)
  return { first: c.err().split('\n')[0]!, err: c.err(), port: relay.port }
}

t.test('https:// against a --no-tls relay: one line that says to use http://', async (t) => {
  const { first, err, port } = await firstFailure(t, 'https')
  t.match(first, new RegExp(`^\\S+Z WARN cannot park: 127\\.0\\.0\\.1:${port} does not speak TLS on this port; if it is a relay run with --no-tls, use http://127\\.0\\.0\\.1:${port}$`))
  t.notMatch(err, /SSL routines|\n\n/, 'no OpenSSL dump, no blank line')
  t.ok(err.split('\n').every((l) => l === '' || / WARN /.test(l)), 'every stderr line is a log line')
})

t.test('http:// against a relay that serves TLS: the line says to use https://', async (t) => {
  const { first, port } = await firstFailure(t, 'http')
  t.match(first, new RegExp(`^\\S+Z WARN cannot park: the rendezvous answered 400 Bad Request: it serves TLS on this port; use https://127\\.0\\.0\\.1:${port}$`))
})

t.test('passwords in --server and --to URLs are not logged', async (t) => {
  const fake = await new FakeRendezvous({ id: TEST_ID, secret: TEST_SECRET }).listen()
  t.teardown(() => fake.close())
  const c = io({ RENDEZVOUS_SECRET: TEST_SECRET })
  let stop!: (reason: string) => void
  const server = `https://admin:hunter2@127.0.0.1:${fake.port}`
  const running = runAgent(['--server', server, '--id', TEST_ID, '--to', 'http://user:pw-s3cret@127.0.0.1:2', '--ca', tlsCertPath, '--pool', '1'],
    c.io, new Promise<string>((resolve) => { stop = resolve }))
  await fake.waitParked(1, 15000)
  stop('SIGTERM')
  t.equal(await running, 0)
  t.match(c.out(), `agent for ID ${TEST_ID} at https://admin:***@127.0.0.1:${fake.port}, relaying to http://user:***@127.0.0.1:2 (pool 1)`)
  t.notMatch(c.out() + c.err(), /hunter2|pw-s3cret/)
})
