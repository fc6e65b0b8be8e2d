import t from 'tap'
import { Writable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { startRendezvous, type TestRendezvous } from '../helpers/rendezvous'
import { until } from '../helpers/until'
import { statusOf } from '../helpers/wire'

/*
 * `client_gone` is a client that left before its request was relayed. It
 * used to count a request pipelined behind an answer that closed the
 * connection too (that client never left), and a client that did leave had
 * no line at info.
 */
interface Line { level: number, msg: string, outcome?: string, id?: string }

async function relayWithLines (t: { teardown: (fn: () => Promise<void>) => void }): Promise<{ relay: TestRendezvous, lines: Line[] }> {
  const lines: Line[] = []
  const stream = new Writable({ write (chunk, _enc, cb) { for (const l of String(chunk).split('\n')) if (l !== '') lines.push(JSON.parse(l) as Line); cb() } })
  const relay = await startRendezvous({ fastify: { logger: { level: 'info', stream } }, plugin: { waitTimeout: 1000 } })
  t.teardown(relay.close)
  return { relay, lines }
}

async function outcomes (relay: TestRendezvous): Promise<Record<string, number>> {
  const text = await relay.app.rendezvous.metrics!.metrics()
  const out: Record<string, number> = {}
  for (const m of text.matchAll(/^rendezvous_requests_total\{outcome="([a-z_]+)"\} (\d+)$/gm)) out[m[1]] = Number(m[2])
  return out
}

const basic = (user: string): string => `Authorization: Basic ${Buffer.from(`${user}:x`).toString('base64')}`

t.test('a request pipelined behind a 404 that closed the connection is neither relayed nor counted', async t => {
  const { relay } = await relayWithLines(t)
  const parked = await relay.park('hub-1')
  const wire = await relay.open()
  wire.write(`GET /first HTTP/1.1\r\nHost: x\r\n${basic('nobody')}\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n${basic('hub-1')}\r\n\r\n`)
  await wire.untilClosed()
  t.equal(statusOf(wire.text), 404)
  t.equal(wire.text.match(/HTTP\/1\.1 /g)?.length, 1, 'one answer, the 404')
  await sleep(100)
  t.equal(parked.text, '', 'the hidden server got nothing')
  t.same(await outcomes(relay), { unknown_id: 1 })
  parked.destroy()
})

t.test('a client that leaves while it waits is counted as client_gone, with an info line', async t => {
  const { relay, lines } = await relayWithLines(t)
  const wire = await relay.open()
  wire.write(`GET /w HTTP/1.1\r\nHost: x\r\n${basic('hub-1')}\r\n\r\n`)
  await until(() => relay.app.rendezvous.stats().waiting === 1, 3000, 'the client to wait')
  wire.destroy()
  await until(() => lines.some(l => l.outcome === 'client_gone'), 3000, 'the client_gone line')
  t.match(lines.find(l => l.outcome === 'client_gone'), { level: 30, id: 'hub-1', msg: 'client left before its request was relayed' })
  t.same(await outcomes(relay), { client_gone: 1 })
})
