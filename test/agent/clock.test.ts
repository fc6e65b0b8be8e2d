import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { SECRET } from '../helpers/fixtures'
import { startRendezvous } from '../helpers/rendezvous'

// The refusal's Date header is how the agent tells a wrong secret from a wrong clock.
t.test('an agent whose clock is 5 minutes ahead is told so, from the server\'s Date', async (t) => {
  const relay = await startRendezvous({ ids: ['hub-1'] })
  t.teardown(() => relay.close())
  const dir = t.testdir({ 'skew.cjs': 'const now = Date.now; Date.now = () => now() + 300000\n' })
  const script = `require(${JSON.stringify(join(__dirname, '../../lib/cli/agent'))}).runAgent(process.argv.slice(1), process)
    .then((code) => { process.exitCode = code })`
  const child = spawn(process.execPath, ['-r', join(dir, 'skew.cjs'), '--import', 'tsx', '-e', script, '--',
    '--server', `http://127.0.0.1:${relay.port}`, '--id', 'hub-1', '--to', 'http://127.0.0.1:9'], {
    env: { ...process.env, RENDEZVOUS_SECRET: SECRET },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  t.teardown(() => { child.kill('SIGKILL') })
  let err = ''
  child.stderr.on('data', (c: Buffer) => { err += c.toString() })
  const [code] = await once(child, 'exit')
  t.equal(code, 1, err)
  t.match(err, /refused the credentials for ID hub-1 \(401\).*this clock is (29[89]|30[01]) s ahead of the server's/)
})
