import t from 'tap'
import { once } from 'node:events'
import { Writable } from 'node:stream'
import { RendezvousAgent } from '../../lib/agent/agent'
import { SECRET } from '../helpers/fixtures'
import { startRendezvous, type TestRendezvous } from '../helpers/rendezvous'
import { until } from '../helpers/until'
import { type TapTest, echoServer, sleep } from './helpers'

const ID = 'hub-1'

interface Line { level: number, msg: string, id?: string, reason?: string, status?: number, reqId?: string, connId?: string, toClient?: number }

async function relayWithLogs (t: TapTest, plugin: Record<string, unknown> = {}, level = 'info'): Promise<{ relay: TestRendezvous, lines: Line[] }> {
  const lines: Line[] = []
  const stream = new Writable({ write (chunk, _enc, cb) { for (const l of String(chunk).split('\n')) if (l !== '') lines.push(JSON.parse(l) as Line); cb() } })
  const relay = await startRendezvous({ fastify: { logger: { level, stream } }, plugin: { waitTimeout: 300, ...plugin } })
  t.teardown(() => relay.close())
  return { relay, lines }
}

async function ask (relay: TestRendezvous): Promise<string> {
  const wire = await relay.open()
  wire.write(`GET /hello HTTP/1.1\r\nHost: x\r\nAuthorization: Basic ${Buffer.from(`${ID}:x`).toString('base64')}\r\nConnection: close\r\n\r\n`)
  await wire.untilClosed()
  return wire.text
}

t.test('serve logs one info line per relayed exchange, at its end, and the leave of a parked connection', async (t) => {
  const { relay, lines } = await relayWithLogs(t)
  const echo = await echoServer()
  t.teardown(() => echo.server.close())
  const agent = new RendezvousAgent({ url: `http://127.0.0.1:${relay.port}`, id: ID, secret: SECRET, to: echo.url, pool: 1 })
  await agent.start()
  await until(() => relay.app.rendezvous.stats().parked === 1, 3000, 'the agent to park')

  t.match(await ask(relay), /^HTTP\/1\.1 200 OK[^]*GET \/hello $/)
  await until(() => lines.some((l) => l.msg === 'relay closed'), 3000, 'relay closed')
  t.match(lines.find((l) => l.msg === 'relay closed'), {
    level: 30, side: 'mobile', id: ID, method: 'GET', url: '/hello', outcome: 'relayed', end: 'closed', reqId: /^[0-9a-f]{16}$/, connId: /^[0-9a-f]{16}$/, hiddenAddress: '127.0.0.1', toClient: Number, toHidden: Number, durationMs: Number
  })
  await until(() => relay.app.rendezvous.stats().parked === 1, 3000, 'the agent to park again')
  // Cut, not closed: close() lets parked connections go with the retirement answer, which is logged at debug.
  await agent.destroy()
  await until(() => lines.some((l) => l.msg === 'parked connection left'), 3000, 'the leave line')
  t.match(lines.find((l) => l.msg === 'parked connection left'), { level: 30, id: ID, reason: 'peer_closed' })

  t.match(await ask(relay), /^HTTP\/1\.1 503 /)
  await until(() => lines.some((l) => l.msg === 'rendezvous request refused'), 3000, 'the refusal line')
  const msgs = lines.map((l) => l.msg).filter((m) => /parked$|relaying|relay closed|refused/.test(m))
  // Parking and the start of a relay are at debug: every rendezvous parks a replacement, and 'relay closed' names both.
  t.same(msgs, ['relay closed', 'rendezvous request refused'], 'one line for the exchange, one for the refusal; no park or relaying line at info')
  t.ok(lines.find((l) => l.msg === 'relay closed')!.toClient! > 0, 'the bytes it carried')
})

t.test('at debug, the park and the start of a relay have lines of their own', async (t) => {
  const { relay, lines } = await relayWithLogs(t, {}, 'debug')
  const echo = await echoServer()
  t.teardown(() => echo.server.close())
  const agent = new RendezvousAgent({ url: `http://127.0.0.1:${relay.port}`, id: ID, secret: SECRET, to: echo.url, pool: 1 })
  t.teardown(() => agent.close())
  await agent.start()
  await until(() => lines.some((l) => l.msg === 'parked'), 3000, 'the parked line')
  const parked = lines.find((l) => l.msg === 'parked')
  t.match(parked, { level: 20, side: 'hidden', id: ID, connId: /^[0-9a-f]{16}$/ })
  t.match(await ask(relay), /^HTTP\/1\.1 200 OK/)
  await until(() => lines.some((l) => l.msg === 'relay closed'), 3000, 'relay closed')
  const relaying = lines.find((l) => l.msg === 'relaying')
  t.match(relaying, { level: 20, side: 'mobile', id: ID, connId: parked?.connId })
  t.match(lines.find((l) => l.msg === 'relay closed'), { level: 30, reqId: relaying?.reqId, connId: parked?.connId })
})

t.test('CONNECT refusals carry Date', async (t) => {
  const { relay } = await relayWithLogs(t)
  const wire = await relay.open()
  wire.write(`CONNECT uuid:${ID}?response=v1.1.AAAAAAAAAAAAAAAAAAAAAA.${'A'.repeat(43)} HTTP/1.1\r\nHost: x\r\n\r\n`)
  await wire.untilClosed()
  t.match(wire.text, /^HTTP\/1\.1 401 Unauthorized\r\n/)
  const date = /\r\nDate: ([^\r]+)\r\n/.exec(wire.text)?.[1]
  t.ok(date !== undefined, 'a Date header')
  t.ok(Math.abs(Date.parse(date!) - Date.now()) < 5000, `a current date: ${date}`)
})

t.test('--pool above the server\'s per-ID limit: one message, and the agent waits for Retry-After before asking again', async (t) => {
  const { relay } = await relayWithLogs(t, { maxParkedPerId: 2 })
  const echo = await echoServer()
  t.teardown(() => echo.server.close())
  const agent = new RendezvousAgent({ url: `http://127.0.0.1:${relay.port}`, id: ID, secret: SECRET, to: echo.url, pool: 3 })
  t.teardown(() => agent.close())
  const [err] = await Promise.all([once(agent, 'error') as Promise<[Error & { code?: string }]>, agent.start()]).then(([e]) => e)
  t.equal(err.code, 'RENDEZVOUS_LOT_FULL')
  t.match(err.message, /^lot full: the rendezvous refused more parked connections \(too many parked connections\); this agent keeps the 2 it has of --pool 3 and tries one more in 5\.\d s/)
  const attempts = agent.stats.attempts
  await new Promise((resolve) => setTimeout(resolve, 1500))
  t.equal(agent.stats.attempts, attempts, 'no more attempts while the lot is full')
  t.equal(relay.app.rendezvous.stats().parked, 2)
})

t.test('a full lot is transient: the pool grows again, one try per Retry-After, once the room is back', async (t) => {
  const relay = await startRendezvous({ ids: [ID, 'hub-2'], plugin: { maxParked: 3, retryAfter: 1 } })
  t.teardown(() => relay.close())
  const echo = await echoServer()
  t.teardown(() => echo.server.close())
  const x = new RendezvousAgent({ url: `http://127.0.0.1:${relay.port}`, id: ID, secret: SECRET, to: echo.url, pool: 2 })
  t.teardown(() => x.close())
  await x.start()
  await until(() => relay.app.rendezvous.stats().parked === 2, 3000, 'X to park two')

  const y = new RendezvousAgent({ url: `http://127.0.0.1:${relay.port}`, id: 'hub-2', secret: SECRET, to: echo.url, pool: 2 })
  t.teardown(() => y.close())
  const errors: Error[] = []
  y.on('error', (err) => errors.push(err))
  await y.start()
  await until(() => errors.length === 1, 3000, 'the lot-full refusal')
  t.match(errors[0], { code: 'RENDEZVOUS_LOT_FULL' })
  t.match(errors[0]!.message, /^lot full: the rendezvous refused more parked connections \(too many parked connections\); this agent keeps the 1 it has of --pool 2 and tries one more in 1\.\d s/)
  t.notMatch(errors[0]!.message, /maxParkedPerId|for this ID/, 'no claim about which limit it was')

  const attempts = y.stats.attempts
  await sleep(2600)
  const tries = y.stats.attempts - attempts
  t.ok(tries >= 1 && tries <= 3, `${tries} tries in 2.6 s with Retry-After: 1`)
  t.equal(errors.length, 1, 'logged once for the episode, not once per refusal')
  t.match(y.stats, { parked: 1 })

  await x.close()
  await until(() => y.stats.parked === 2, 4000, 'Y to grow back to its pool once X is gone')
  t.equal(errors.length, 1)
})
