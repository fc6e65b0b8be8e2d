import t from 'tap'
import { once } from 'node:events'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { RendezvousAgent } from '../../lib/agent/agent'
import { buildProblem, servePlainWithId } from '../helpers/cli'
import { openWire, statusOf } from '../helpers/wire'

/*
 * An agent that closes (SIGTERM) lets its parked connections go the way it
 * does at --max-age, with the retirement answer. It used to close them
 * outright: a request the relay was writing into one at that moment was
 * lost, and its client got a bare close instead of an answer. Here each
 * request leaves just as the agent closes; every client must get a status:
 * its answer (after the interim 100) or the relay's own refusal once no
 * hidden server is left.
 */
const problem = buildProblem(t)
if (problem !== undefined) {
  t.fail(problem)
} else {
  t.test('closing an agent never takes a request with it', async t => {
    const { secret, port, serve } = await servePlainWithId(t, 'hub-close', ['--log-level', 'warn', '--wait-timeout', '0.2'])

    const local = http.createServer((req, res) => { res.end(`ok ${req.url ?? ''}`) })
    local.listen(0, '127.0.0.1')
    await once(local, 'listening')
    t.teardown(() => local.close())
    const to = `http://127.0.0.1:${(local.address() as AddressInfo).port}`

    const lost: string[] = []
    const outcomes = new Map<string, number>()
    for (let i = 0; i < 45; i++) {
      const agent = new RendezvousAgent({ url: `http://127.0.0.1:${port}`, id: 'hub-close', secret, to, pool: 1 })
      await agent.start()
      const wire = await openWire(port, false)
      wire.write(`GET /r${i} HTTP/1.1\r\nHost: h\r\nAuthorization: Basic ${Buffer.from('hub-close:x').toString('base64')}\r\nConnection: close\r\n\r\n`)
      // Spread the moments of closing over the request's trip through the relay.
      if (i % 3 === 1) await new Promise(resolve => setImmediate(resolve))
      if (i % 3 === 2) await sleep(0)
      const closed = agent.close()
      await wire.untilClosed(10_000)
      await closed
      const final = wire.text.replace(/^HTTP\/1\.1 100 Continue\r\n\r\n/, '')
      const status = statusOf(final)
      const served = status === 200 && final.endsWith(`ok /r${i}`)
      const kind = served ? (final === wire.text ? 'served' : 'served after the 100') : `refused ${status ?? 'with no status'}`
      outcomes.set(kind, (outcomes.get(kind) ?? 0) + 1)
      if (!served && (status === undefined || status < 500)) lost.push(`/r${i}: ${JSON.stringify(wire.text.slice(0, 80))}`)
    }
    t.same(lost, [], `every client got an answer or a 5xx refusal: ${JSON.stringify(Object.fromEntries(outcomes))}`)
    t.equal((await serve.stop('SIGTERM')).code, 0)
  })
}
