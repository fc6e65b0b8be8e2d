import t from 'tap'
import { resolveOptions, type RendezvousOptions } from '../../lib/options'
import { startRendezvous, type TestRendezvous } from '../helpers/rendezvous'
import { until } from '../helpers/until'
import type { WireClient } from '../helpers/wire'

/*
 * maxWaiters and maxWaitersPerId each answer a 503 of their own, so that an
 * operator can tell which limit refused; 0 lets no client wait at all.
 * maxPendingConnects of 0 would answer every CONNECT 503 while the relay says
 * it is ready: refused as maxParked is.
 */

type Test = Parameters<Parameters<typeof t.test>[0]>[0]

async function relayWith (t: Test, plugin: RendezvousOptions): Promise<TestRendezvous> {
  const relay = await startRendezvous({ ids: ['hub-1', 'hub-2'], plugin: { waitTimeout: 30_000, retryAfter: 7, ...plugin } })
  t.teardown(relay.close)
  return relay
}

async function ask (relay: TestRendezvous, id: string): Promise<WireClient> {
  const wire = await relay.open()
  wire.write(`GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="${id}", realm="rendezvous"\r\n\r\n`)
  return wire
}

async function refusal (relay: TestRendezvous, id: string): Promise<string> {
  const wire = await ask(relay, id)
  await wire.untilClosed()
  return wire.text
}

function busy (message: string): string {
  return `HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${message.length + 1}\r\nConnection: close\r\nRetry-After: 7\r\n\r\n${message}\n`
}

const ALL = 'too many clients waiting in all'
const PER_ID = 'too many clients waiting for this ID'

t.test('maxWaiters: 0 refuses every client that finds nothing parked, at once, as the global limit', async t => {
  const relay = await relayWith(t, { maxWaiters: 0 })
  t.equal(await refusal(relay, 'hub-1'), busy(ALL))
})

t.test('maxWaitersPerId: 0 refuses every client that finds nothing parked, at once, as the per-ID limit', async t => {
  const relay = await relayWith(t, { maxWaitersPerId: 0 })
  t.equal(await refusal(relay, 'hub-1'), busy(PER_ID))
})

t.test('with clients waiting, each limit answers its own 503', async t => {
  const relay = await relayWith(t, { maxWaiters: 2, maxWaitersPerId: 1 })
  const waiting = [await ask(relay, 'hub-1')]
  t.teardown(() => { for (const w of waiting) w.destroy() })
  await untilWaiting(relay, 1)
  t.equal(await refusal(relay, 'hub-1'), busy(PER_ID), 'a second for hub-1: the per-ID limit')
  waiting.push(await ask(relay, 'hub-2'))
  await untilWaiting(relay, 2)
  t.equal(await refusal(relay, 'hub-2'), busy(ALL), 'a third in all, for an ID with room: the global limit')
})

t.test('maxPendingConnects must be a positive integer', async t => {
  for (const [value, got] of [[0, '0'], [1.5, '1.5']] as const) {
    t.throws(() => resolveOptions({ maxPendingConnects: value }), { code: 'FST_RENDEZVOUS_BAD_OPTION', message: `Invalid rendezvous option: maxPendingConnects must be a positive integer, got ${got}` })
  }
  t.equal(resolveOptions({ maxPendingConnects: 1 }).maxPendingConnects, 1)
  t.equal(resolveOptions({ maxWaiters: 0, maxWaitersPerId: 0 }).maxWaiters, 0, 'the waiter limits take 0')
})

async function untilWaiting (relay: TestRendezvous, n: number): Promise<void> {
  await until(() => relay.app.rendezvous.stats().waiting === n, 5000, `${n} waiting`)
}
