import t from 'tap'
import { once } from 'node:events'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { RendezvousAgent } from '../../lib/agent/agent'
import { buildProblem, servePlainWithId } from '../helpers/cli'
import { until } from '../helpers/until'
import { openWire, statusOf, type WireClient } from '../helpers/wire'

/*
 * A closing agent used to abort the CONNECTs it still had in flight. The
 * relay may have parked such a connection already and handed it a waiting
 * client's request, which was then lost with it: the client got a reset.
 * Now each is let finish, and then served or let go like a parked one.
 * Here clients wait at the relay before the agent starts, and the agent
 * closes as its first connection is taken, with the others in flight.
 */
const problem = buildProblem(t)
if (problem !== undefined) {
  t.fail(problem)
} else {
  t.test('closing while CONNECTs are in flight loses no request already handed to them', async t => {
    const { secret, port, serve } = await servePlainWithId(t, 'hub-cc', ['--log-level', 'warn', '--wait-timeout', '1'])
    const local = http.createServer((req, res) => { res.end(`ok ${req.url ?? ''}`) })
    local.listen(0, '127.0.0.1')
    await once(local, 'listening')
    t.teardown(() => local.close())
    const metrics = async (): Promise<string> => await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()

    const outcomes: string[] = []
    for (let round = 0; round < 8; round++) {
      const clients: WireClient[] = []
      for (let i = 0; i < 4; i++) {
        const wire = await openWire(port, false)
        wire.write(`GET /r${round}-${i} HTTP/1.1\r\nHost: h\r\nAuthorization: Basic ${Buffer.from('hub-cc:x').toString('base64')}\r\nConnection: close\r\n\r\n`)
        clients.push(wire)
      }
      await until(async () => /rendezvous_waiting_clients 4\b/.test(await metrics()), 3000, '4 clients waiting')
      const agent = new RendezvousAgent({ url: `http://127.0.0.1:${port}`, id: 'hub-cc', secret, to: `http://127.0.0.1:${(local.address() as AddressInfo).port}`, pool: 4 })
      agent.once('taken', () => { agent.close().catch(() => {}) })
      agent.start().catch(() => {})
      for (const [i, wire] of clients.entries()) {
        await wire.untilClosed(10_000)
        const final = wire.text.replace(/^HTTP\/1\.1 100 Continue\r\n\r\n/, '')
        const status = statusOf(final)
        outcomes.push(status === 200 && final.endsWith(`ok /r${round}-${i}`) ? 'served' : status === undefined ? `lost: ${JSON.stringify(wire.text.slice(0, 60))}` : `refused ${status}`)
      }
      await agent.close()
    }
    t.same(outcomes.filter(o => o.startsWith('lost')), [], `no client lost its request: ${JSON.stringify(outcomes.reduce<Record<string, number>>((n, o) => ({ ...n, [o.split(':')[0]!]: (n[o.split(':')[0]!] ?? 0) + 1 }), {}))}`)
    t.equal((await serve.stop('SIGTERM')).code, 0)
  })
}
