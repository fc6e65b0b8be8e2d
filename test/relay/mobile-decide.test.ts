import t from 'tap'
import type { FastifyBaseLogger } from 'fastify'
import { createMetrics } from '../../lib/relay/metrics'
import { createMobileSide } from '../../lib/relay/mobile-side'
import { ParkingLot } from '../../lib/relay/parking-lot'
import { SpliceSet } from '../../lib/relay/splice-set'
import type { HeadersOnlyRequest } from '../../lib/relay/handoff'

/*
 * The header callback's decision, on heads Node's strict parser never lets
 * through but its lenient one (Fastify's insecureHTTPParser) does on some
 * Node versions: the answer is decided before any parked connection is taken.
 */

const side = createMobileSide({
  registry: { get: id => id === 'hub-1' ? { id, secret: 'S', createdAt: '' } : undefined },
  lot: new ParkingLot({ maxPerId: 1, maxTotal: 1, maxWaitersPerId: 1, maxWaiters: 1, keepAliveInitialDelay: 1000 }),
  metrics: createMetrics(false),
  log: { child: () => ({}) } as unknown as FastifyBaseLogger,
  limits: { waitTimeout: 0, retryAfter: 1, spliceIdleTimeout: 0, maxSpliced: 0, maxWaitBuffer: 0 },
  refusing: () => undefined,
  coolingOff: async () => 0,
  splices: new SpliceSet()
})

function req (rawHeaders: string[], url = '/', httpVersion = '1.1'): HeadersOnlyRequest {
  const [major, minor] = httpVersion.split('.').map(Number)
  return { method: 'GET', url, httpVersion, httpVersionMajor: major, httpVersionMinor: minor, rawHeaders, upgrade: false } as unknown as HeadersOnlyRequest
}

const AUTH = ['Authorization', 'Digest username="hub-1"']
const complete = { headersTruncated: false }

t.test('a CR, LF or NUL in a header is refused with 400 in the header callback', async t => {
  for (const bad of ['a\0b', 'a\rb', 'a\nb']) {
    const ticket = side.decide(req(['Host', 'h', 'X-Bad', bad, ...AUTH]), complete)
    t.equal(ticket?.kind, 'refuse', JSON.stringify(bad))
    t.equal(ticket?.kind === 'refuse' && ticket.refusal.status, 400)
  }
  const badName = side.decide(req(['Host', 'h', 'X\0Y', 'v', ...AUTH]), complete)
  t.equal(badName?.kind === 'refuse' && badName.refusal.status, 400)
})

t.test('a head Node kept in part is refused with 431', async t => {
  const ticket = side.decide(req(['Host', 'h', ...AUTH]), { headersTruncated: true })
  t.equal(ticket?.kind === 'refuse' && ticket.refusal.status, 431)
})

t.test('a good head is serialised in the header callback, minus the credential', async t => {
  const ticket = side.decide(req(['Host', 'h', ...AUTH, 'X-A', ' b ']), complete)
  t.equal(ticket?.kind, 'relay')
  t.equal(ticket?.kind === 'relay' && ticket.head.toString('latin1'), 'GET / HTTP/1.1\r\nHost: h\r\nX-A: b\r\n\r\n')
})
