import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { startCli, type Proc } from '../helpers/cli'
import { openWire, statusOf } from '../helpers/wire'
import { createV1Token } from '../../lib/tokens/v1'
import { CLUSTER_SECRET, startNode } from './nodes'
import { LogLines } from './log-lines'
import { redisMissing, startRedis } from './redis-server'

const skip = redisMissing() ?? false

async function freePort (): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1')
  await new Promise(resolve => server.once('listening', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise(resolve => server.close(resolve))
  return port
}

/*
 * A node killed and started again at once, on the same peer address (as
 * systemd does), has a new node ID, while the other nodes' lookups still list
 * the old one for a few seconds. Links meant for the old node reached the new
 * one, which refused them as if signed with a wrong cluster secret: both ends
 * logged "is --cluster-secret the same on every node?" and counted
 * `unauthorized`, sending operators after the wrong cause.
 */
t.test('a node restarted at the same peer address answers links meant for its predecessor as misdirected, not as a wrong secret', { skip }, async t => {
  const scratch = await mkdtemp(join(tmpdir(), 'rendezvous-restart-'))
  t.teardown(async () => { await rm(scratch, { recursive: true, force: true }) })
  const redis = await startRedis(t)
  const askerLog = new LogLines()
  const asker = await startNode('a', redis.url, { waitTimeout: 15_000 }, askerLog)
  t.teardown(async () => { await asker.close() })
  const { id, secret } = await asker.app.rendezvous.registry.add({})
  const peerPort = await freePort()

  const holder = async (): Promise<{ proc: Proc, port: number }> => {
    const proc = startCli(t, ['serve', '--no-tls', '--port', '0', '--data-dir', join(scratch, 'b'), '--log-level', 'info',
      '--redis', redis.url, '--cluster-secret', CLUSTER_SECRET, '--peer-host', '127.0.0.1', '--peer-port', String(peerPort)], { watchdog: false })
    const port = Number((await proc.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)\//, 20_000))[1])
    return { proc, port }
  }
  const park = async (port: number): Promise<Awaited<ReturnType<typeof openWire>>> => {
    const wire = await openWire(port, false)
    wire.write(`CONNECT uuid:${id}?response=${createV1Token(id, secret)} HTTP/1.1\r\nHost: h\r\n\r\n`)
    await wire.untilText('HTTP/1.1 200 OK\r\n\r\n')
    wire.drain()
    return wire
  }

  const first = await holder()
  await park(first.port)
  // Long enough for its heartbeat to publish the parked connection (every second by default).
  await new Promise(resolve => setTimeout(resolve, 1500))
  first.proc.child.kill('SIGKILL')
  await first.proc.exited
  // Asked while its lookup still lists the killed node, the asker dials that address again every retry interval:
  // refused until the new node listens there, then answered by the new node.
  const client = await openWire(asker.port, false)
  client.write(`GET /after-restart HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="${id}"\r\n\r\n`)
  const second = await holder()
  await new Promise(resolve => setTimeout(resolve, 300))
  const hidden = await park(second.port)
  await hidden.untilText('\r\n\r\n', 10_000)
  t.match(hidden.text, /^GET \/after-restart HTTP\/1\.1\r\n/, 'the request reached the hidden server parked on the restarted node')
  hidden.write('HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n')
  hidden.socket.end()
  await client.untilClosed(10_000)
  t.equal(statusOf(client.text), 204)

  const asked = askerLog.find('node did not hand over a connection')
  t.ok(asked.length >= 1, `the asker met the new node at the old address (${asked.length} times)`)
  t.notOk(asked.some(l => /cluster-secret/.test(l.msg)), 'without a hint at the cluster secret')
  const misdirected = asked.filter(l => /421 misdirected.*another node answers at that address \(after a restart, its registration soon replaces this one/.test(String(l.error)))
  t.ok(misdirected.length >= 1, `and says what happened: ${asked.map(l => String(l.error)).join(' | ')}`)
  const output = second.proc.output()
  t.notMatch(output, /cluster-secret/, 'the new node does not blame the secret either')
  t.notMatch(output, /advertises the same peer address/, 'nor takes its predecessor, still on the map, for a live node at its address')
  const metrics = await (await fetch(`http://127.0.0.1:${second.port}/metrics`)).text()
  t.match(metrics, /^rendezvous_cluster_handovers_total\{outcome="misdirected"\} [1-9]/m, 'and counts them as misdirected')
  t.equal((await second.proc.stop('SIGTERM')).code, 0)
})
