import t from 'tap'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import net, { type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { RendezvousAgent } from '../../lib/agent/agent'
import { buildProblem, runCli, startCli } from '../helpers/cli'
import { SECRET } from '../helpers/fixtures'
import { startRendezvous } from '../helpers/rendezvous'
import tlsModule from 'node:tls'

/*
 * A closing agent cuts the relays that outlive its grace, and so its
 * connections to the local service end too. One to a service that never
 * closed its side used to linger, half-closed, for five more seconds, and
 * kept the process alive after its "closed" line: a supervisor waiting for
 * the exit waited that long for nothing.
 */
const problem = buildProblem(t)
if (problem !== undefined) {
  t.fail(problem)
} else {
  for (const [signals, tls] of [[1, true], [2, true], [1, false]] as const) {
    t.test(`${tls ? 'TLS' : 'plain'}: after ${signals === 1 ? 'one signal' : 'a second signal'}, the agent exits as soon as it has closed`, async t => {
      const dir = mkdtempSync(join(tmpdir(), 'rendezvous-agent-exit-'))
      t.teardown(() => rmSync(dir, { recursive: true, force: true }))
      const added = JSON.parse((await runCli(t, ['ids', 'add', '--data-dir', dir, '--id', 'hub-exit', '--json'])).stdout)
      const serve = startCli(t, ['serve', ...(tls ? [] : ['--no-tls']), '--port', '0', '--data-dir', dir, '--log-level', 'warn'])
      const [, scheme, port] = await serve.waitFor(/listening on (https?):\/\/127\.0\.0\.1:(\d+)\//)

      // A local service that takes the request and never answers, nor closes its side.
      const held: net.Socket[] = []
      const local = net.createServer({ allowHalfOpen: true }, socket => { held.push(socket); socket.resume() })
      local.listen(0, '127.0.0.1')
      await once(local, 'listening')
      t.teardown(() => { for (const s of held) s.destroy(); local.close() })

      const agent = startCli(t, ['agent', '--server', `${scheme}://127.0.0.1:${port}`, ...(tls ? ['--ca', join(dir, 'tls', 'cert.pem')] : []), '--id', 'hub-exit', '--to', `http://127.0.0.1:${(local.address() as AddressInfo).port}`, '--pool', '1', '--log-level', 'info'], { env: { RENDEZVOUS_SECRET: added.secret } })
      await agent.waitFor(/parked/)
      const options = { host: '127.0.0.1', port: Number(port) }
      // The client's own trust is not what is tested here.
      const wire = tls ? tlsModule.connect({ ...options, rejectUnauthorized: false }) : net.connect(options)
      wire.on('error', () => {})
      t.teardown(() => wire.destroy())
      wire.write(`GET /slow HTTP/1.1\r\nHost: h\r\nAuthorization: Basic ${Buffer.from('hub-exit:x').toString('base64')}\r\n\r\n`)
      while (held.length === 0) await new Promise(resolve => setTimeout(resolve, 20))

      agent.child.kill('SIGTERM')
      if (signals === 2) {
        await agent.waitFor(/closing/)
        agent.child.kill('SIGTERM')
      }
      const exit = await Promise.race([agent.exited, new Promise(resolve => setTimeout(resolve, 4000, 'still running'))])
      t.not(exit, 'still running', 'exited within 4 s of the first signal (2 s of grace, then the cut)')
      t.equal(await agent.exited.then(e => e.code), signals === 1 ? 0 : 1)
      await serve.stop('SIGTERM')
    })
  }
}

t.test('a relay whose local service was not reached yet when the grace ends gets a 503, not an empty reply', async t => {
  const relay = await startRendezvous({ ids: ['hub-1'] })
  t.teardown(relay.close)
  // An https:// local service whose TLS handshake never comes: its connection is never ready.
  const silent = net.createServer(socket => { socket.on('error', () => {}) })
  silent.listen(0, '127.0.0.1')
  await once(silent, 'listening')
  t.teardown(() => silent.close())
  const agent = new RendezvousAgent({ url: `http://127.0.0.1:${relay.port}`, id: 'hub-1', secret: SECRET, to: `https://127.0.0.1:${(silent.address() as AddressInfo).port}`, toInsecure: true, pool: 1, closeGrace: 300 })
  await agent.start()
  const wire = await relay.open()
  wire.write(`GET /slow HTTP/1.1\r\nHost: h\r\nAuthorization: Basic ${Buffer.from('hub-1:x').toString('base64')}\r\n\r\n`)
  await new Promise<void>(resolve => agent.once('taken', () => resolve()))
  await agent.close()
  await wire.untilClosed()
  t.match(wire.text, /^HTTP\/1\.1 503 Service Unavailable\r\n[^]*\r\n\r\nThe hidden server is shutting down\.\n$/)
})
