import { spawn } from 'node:child_process'
import { once } from 'node:events'
import net from 'node:net'
import t from 'tap'
import { buildProblem, CLI_MAIN } from '../helpers/cli'
import { tempDir } from '../helpers/serve-cli'

/*
 * serve under a supervisor that stopped reading its log pipe, and signals
 * an operator may send out of habit. A closed serve whose last lines waited
 * for a stdout nobody read never ended (a second SIGTERM then killed it,
 * exit 143); SIGUSR1 opened Node's inspector, which runs any code a local
 * user sends it.
 */

async function freePort (): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as net.AddressInfo
  server.close()
  return port
}

// Requests for an ID nobody has: two debug lines each, and the connection stays open for the next.
async function logLoudly (port: number, requests: number): Promise<void> {
  const socket = net.connect(port, '127.0.0.1')
  await once(socket, 'connect')
  const auth = Buffer.from('nobody-here:x').toString('base64')
  socket.write(`GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Basic ${auth}\r\n\r\n`.repeat(requests))
  let answers = 0
  await new Promise<void>(resolve => {
    socket.on('data', (chunk: Buffer) => {
      answers += chunk.toString('latin1').split('HTTP/1.1 404').length - 1
      if (answers >= requests) resolve()
    })
    socket.on('close', () => resolve())
  })
  socket.destroy()
}

type Test = Parameters<Parameters<typeof t.test>[0]>[0]

async function startServe (t: Test): Promise<{ child: ReturnType<typeof spawn>, port: number, stderr: () => string }> {
  const port = await freePort()
  const child = spawn(process.execPath, [CLI_MAIN, 'serve', '--no-tls', '--port', String(port), '--data-dir', tempDir(t), '--log-level', 'debug', '--close-grace-period', '1'], { stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { child.kill('SIGKILL') })
  let stderr = ''
  child.stderr!.on('data', (c: Buffer) => { stderr += c.toString() })
  let out = ''
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (c: Buffer) => { out += c.toString(); if (out.includes('listening on')) resolve() })
    child.once('exit', () => reject(new Error(`serve ended: ${stderr}`)))
  })
  return { child, port, stderr: () => stderr }
}

const problem = buildProblem(t)
if (problem !== undefined) {
  t.fail(problem)
} else {
  t.test('a serve whose stdout nobody reads any more still ends after SIGTERM, with 0', async t => {
    const { child, port } = await startServe(t)
    // From here nothing reads stdout: the pipe and Node's buffer fill, and serve's lines queue up.
    child.stdout!.pause()
    child.stdout!.removeAllListeners('data')
    for (let i = 0; i < 6; i++) await logLoudly(port, 200)
    const started = Date.now()
    child.kill('SIGTERM')
    const exited = once(child, 'exit') as Promise<[number | null, string | null]>
    const outcome = await Promise.race([exited, new Promise<'hung'>(resolve => setTimeout(() => resolve('hung'), 12_000))])
    t.not(outcome, 'hung', 'ended within the close grace and the flush time')
    if (outcome !== 'hung') t.same(outcome, [0, null], 'exit 0, not killed')
    t.ok(Date.now() - started < 12_000)
  })

  t.test('SIGUSR1 does not open the inspector: serve goes on, and says nothing of a debugger', async t => {
    const { child, port, stderr } = await startServe(t)
    child.kill('SIGUSR1')
    await new Promise(resolve => setTimeout(resolve, 500))
    t.equal(child.exitCode, null, 'still running')
    t.notMatch(stderr(), /Debugger listening|inspector/i)
    const health = await fetch(`http://127.0.0.1:${port}/healthz`)
    t.equal(health.status, 200)
    child.kill('SIGTERM')
    const [code] = await once(child, 'exit') as [number | null]
    t.equal(code, 0)
  })
}
