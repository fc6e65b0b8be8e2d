import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { tlsCertPath } from '../helpers/tls'
import { FakeRendezvous, TEST_ID, TEST_SECRET } from '../agent/fake-rendezvous'
import { echoServer, readAll } from '../agent/helpers'

/*
 * The agent's line for each relayed request names it by method and path.
 * An absolute-form target carries a password in its userinfo, and the
 * relay passes the request line on as the client sent it: the line shows
 * the target without userinfo or query, and any control character a client
 * put in it escaped, so that it cannot forge a line or drive a terminal.
 */
t.test('the agent logs a relayed request without userinfo, query or raw control characters', async t => {
  const fake = await new FakeRendezvous({ id: TEST_ID, secret: TEST_SECRET }).listen()
  const echo = await echoServer()
  t.teardown(() => fake.close())
  t.teardown(() => echo.server.close())
  const script = `require(${JSON.stringify(join(__dirname, '../../lib/cli/agent'))}).runAgent(process.argv.slice(1), process)
    .then((code) => { process.exitCode = code })`
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', script, '--',
    '--server', fake.url, '--id', TEST_ID, '--to', echo.url, '--ca', tlsCertPath, '--pool', '1'], {
    env: { ...process.env, RENDEZVOUS_SECRET: TEST_SECRET },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const out: Buffer[] = []
  child.stdout!.on('data', (c: Buffer) => { out.push(c) })
  child.stderr!.on('data', (c: Buffer) => { out.push(c) })
  const requests = [
    Buffer.from('GET http://u:HUNTER9@h/x?access_token=QLEAK HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n', 'latin1'),
    Buffer.from('GET /a\x9b2J\x85b?q=QLEAK2 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n', 'latin1')
  ]
  for (const request of requests) {
    await fake.waitParked(1, 15000)
    const answer = await readAll(fake.take(request))
    t.match(answer.toString(), /^HTTP\/1\.1 /, 'relayed to the local service')
  }
  const logged = (): string => Buffer.concat(out).toString('latin1')
  const deadline = Date.now() + 5000
  while ((logged().match(/relayed in \d+ ms/g)?.length ?? 0) < 2 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 50))
  child.kill('SIGTERM')
  await once(child, 'exit')
  const text = Buffer.concat(out).toString('utf8')
  t.match(text, /Z GET http:\/\/h\/x relayed in \d+ ms\n/, 'the target without its userinfo or query')
  t.match(text, /Z GET \/a\\x9b2J\\x85b relayed in \d+ ms\n/, 'control characters escaped')
  t.notMatch(text, /HUNTER9|u:|QLEAK|[\u0085\u009b]/, 'no password, no query, no raw C1 control')
})
