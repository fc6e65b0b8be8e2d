import t from 'tap'
import { once } from 'node:events'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { RendezvousAgent } from '../../lib/agent/agent'
import { buildProblem, servePlainWithId } from '../helpers/cli'
import { openWire, statusOf } from '../helpers/wire'

/*
 * An agent lets each connection it has held for maxAge go, once a fresh one
 * has parked. It used to close it, and the relay hands out its longest-parked
 * connection first: a request written into it as it closed was lost, and
 * its client got a bare close. Here every request leaves the moment the
 * agent lets one go, the worst moment; it lost one in ten or more.
 */
const problem = buildProblem(t)
if (problem !== undefined) {
  t.fail(problem)
} else {
  t.test('a connection let go for its age never takes a request with it', async t => {
    const { secret, port, serve } = await servePlainWithId(t, 'hub-age', ['--log-level', 'warn'])

    const local = http.createServer((req, res) => { res.end(`ok ${req.url ?? ''}`) })
    local.listen(0, '127.0.0.1')
    await once(local, 'listening')
    t.teardown(() => local.close())
    const agent = new RendezvousAgent({
      url: `http://127.0.0.1:${port}`,
      id: 'hub-age',
      secret,
      to: `http://127.0.0.1:${(local.address() as AddressInfo).port}`,
      pool: 2,
      maxAge: 1000
    })
    t.teardown(() => agent.close())
    await agent.start()

    const lost: string[] = []
    let answered = 0
    let interim = 0
    // A replacement every half second or so (pool 2, maxAge 1 s): 40 of them, each met by a request at that moment.
    for (let i = 0; i < 40; i++) {
      const wire = await openWire(port, false)
      const request = `GET /r${i} HTTP/1.1\r\nHost: h\r\nAuthorization: Basic ${Buffer.from('hub-age:x').toString('base64')}\r\nConnection: close\r\n\r\n`
      await new Promise<void>(resolve => agent.once('replaced', () => { wire.write(request); resolve() }))
      await wire.untilClosed(10_000)
      // A request that met the retirement gets the interim 100 first, which HTTP/1.1 clients skip.
      const final = wire.text.replace(/^HTTP\/1\.1 100 Continue\r\n\r\n/, '')
      if (final !== wire.text) interim++
      if (statusOf(final) === 200 && final.endsWith(`ok /r${i}`)) answered++
      else lost.push(`/r${i}: ${JSON.stringify(wire.text.slice(0, 80))}`)
    }
    t.same(lost, [], `every one of ${answered + lost.length} requests was answered (${interim} met a connection being let go)`)
    await agent.close()
    t.equal((await serve.stop('SIGTERM')).code, 0)
  })
}
