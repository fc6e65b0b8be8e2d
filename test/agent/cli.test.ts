import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { runAgent } from '../../lib/cli/agent'
import { otherCert, otherKey, tlsCertPath } from '../helpers/tls'
import { FakeRendezvous, TEST_ID, TEST_SECRET } from './fake-rendezvous'
import { echoServer, readAll } from './helpers'

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
    [[...BASE, '--max-age', 'soon'], { RENDEZVOUS_SECRET: TEST_SECRET }, /--max-age must be a number of seconds/],
    [[...BASE, '--backoff-max', '0'], { RENDEZVOUS_SECRET: TEST_SECRET }, /--backoff-max must be a number of seconds above 0/],
    [[...BASE, '--secret', 'TOOSHORT'], {}, /--secret must be base32/],
    [['--server', 'ftp://x', '--id', TEST_ID, '--to', 'http://127.0.0.1:2'], { RENDEZVOUS_SECRET: TEST_SECRET }, /--server must be https:\/\/ or http:\/\//],
    [[...BASE.slice(0, 4), '--to', 'ftp://127.0.0.1:2'], { RENDEZVOUS_SECRET: TEST_SECRET }, /--to must be an http:\/\/ or https:\/\/ URL/]
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
  t.match(c.err(), /refused the credentials for ID .* \(401\)/)
  t.equal(fake.connects.length, 1)
  t.notMatch(c.out() + c.err(), wrong)
})

t.test('--insecure warns on stderr', async (t) => {
  const fake = await new FakeRendezvous({ id: TEST_ID, secret: TEST_SECRET, key: otherKey, cert: otherCert, answer: () => ({ kind: 'refuse', status: 403 }) }).listen()
  t.teardown(() => fake.close())
  const c = io({ RENDEZVOUS_SECRET: TEST_SECRET })
  t.equal(await runAgent(['--server', fake.url, '--id', TEST_ID, '--to', 'http://127.0.0.1:2', '--insecure'], c.io), 1)
  t.match(c.err(), /WARNING: TLS certificate verification is OFF/)
})

t.test('an untrusted certificate is logged with the flag that fixes it', async (t) => {
  const fake = await new FakeRendezvous({ id: TEST_ID, secret: TEST_SECRET }).listen()
  t.teardown(() => fake.close())
  const c = io({ RENDEZVOUS_SECRET: TEST_SECRET })
  let stop: (reason: string) => void = () => {}
  const done = runAgent(['--server', fake.url, '--id', TEST_ID, '--to', 'http://127.0.0.1:2', '--backoff-max', '0.05'], c.io, new Promise((resolve) => { stop = resolve }))
  while (!c.out().includes('cannot park')) await new Promise((resolve) => setTimeout(resolve, 20))
  stop('test')
  t.equal(await done, 0)
  t.match(c.out(), /Z test: closing\n/)
  // Node 24 adds its own hint to the TLS message, so only the stable parts are matched.
  t.match(c.out(), /cannot park: self-signed certificate[^\n]*\(give the rendezvous certificate or its CA with --ca FILE\)/)
  t.equal(fake.connects.length, 0)
})

t.test('runs until SIGTERM, logging each state change, then exits 0', async (t) => {
  const fake = await new FakeRendezvous({ id: TEST_ID, secret: TEST_SECRET }).listen()
  const echo = await echoServer()
  t.teardown(() => fake.close())
  t.teardown(() => echo.server.close())
  const script = `require(${JSON.stringify(join(__dirname, '../../lib/cli/agent'))}).runAgent(process.argv.slice(1), process)
    .then((code) => { process.exitCode = code })`
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', script, '--',
    '--server', fake.url, '--id', TEST_ID, '--to', echo.url, '--ca', tlsCertPath, '--pool', '2'], {
    env: { ...process.env, RENDEZVOUS_SECRET: TEST_SECRET },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  let err = ''
  child.stdout.on('data', (c: Buffer) => { out += c.toString() })
  child.stderr.on('data', (c: Buffer) => { err += c.toString() })
  await fake.waitParked(2, 15000)
  const answer = await readAll(fake.take('GET /via-cli HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'))
  t.match(answer.toString(), /^HTTP\/1\.1 200 OK/)
  await fake.waitParked(2)
  await new Promise((resolve) => setTimeout(resolve, 100))
  child.kill('SIGTERM')
  const [code] = await once(child, 'exit')
  t.equal(code, 0, err)
  t.match(out, /Z parked \(1\/2 waiting\)\n/)
  t.match(out, /Z taken by a mobile client/)
  t.match(out, /Z relay finished/)
  t.match(out, /Z SIGTERM: closing\n.*Z closed\n$/)
  t.notMatch(out + err, TEST_SECRET)
  t.equal(echo.requests[0]?.url, '/via-cli')
})
