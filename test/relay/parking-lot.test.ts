import type { Socket } from 'node:net'
import t from 'tap'
import { ParkingLot, type LotLimits, type ParkedExit, type WaitOutcome } from '../../lib/relay/parking-lot'
import { socketPair, socketPairs } from '../helpers/socket-pair'
import { until } from '../helpers/until'

// The peers close when the lot closes its end, as hidden servers do.
const CLOSING = { allowHalfOpen: false }

const LIMITS: LotLimits = { maxPerId: 64, maxTotal: 10_000, maxWaitersPerId: 256, maxWaiters: 10_000, keepAliveInitialDelay: 30_000 }

interface Watched {
  lot: ParkingLot
  exits: Array<[string, ParkedExit]>
  changes: Array<[number, number]>
}

function lotWith (limits: Partial<LotLimits> = {}): Watched {
  const exits: Array<[string, ParkedExit]> = []
  const changes: Array<[number, number]> = []
  const lot = new ParkingLot({ ...LIMITS, ...limits }, {
    onParkedExit: (id, why) => exits.push([id, why]),
    onChange: (parked, waiting) => changes.push([parked, waiting])
  })
  return { lot, exits, changes }
}

function socketOf (outcome: WaitOutcome | undefined): Socket | undefined {
  return outcome !== undefined && 'socket' in outcome ? outcome.socket : undefined
}

t.test('newest first per ID; IDs do not mix', async t => {
  const { lot, changes } = lotWith()
  const [a1, a2, b1, a3] = await socketPairs(t, 4, CLOSING)
  lot.park('a', a1.near)
  lot.park('a', a2.near)
  lot.park('b', b1.near)
  lot.park('a', a3.near)
  t.same(lot.size, { parked: 4, waiting: 0 })
  t.equal(lot.parkedFor('a'), 3)
  t.equal(lot.take('a'), a3.near, 'the most recently parked first')
  t.equal(lot.take('a'), a2.near)
  t.equal(lot.take('b'), b1.near)
  t.equal(lot.take('b'), undefined, 'b is empty')
  t.equal(lot.take('a'), a1.near)
  t.equal(lot.take('nobody'), undefined)
  t.same(lot.size, { parked: 0, waiting: 0 })
  t.same(changes, [[1, 0], [2, 0], [3, 0], [4, 0], [3, 0], [2, 0], [1, 0], [0, 0]], 'every change reported')
})

t.test('a taken socket is paused, keeps no lot listener, and loses no byte sent after', async t => {
  const { lot, exits } = lotWith()
  const { near, far } = await socketPair(t, CLOSING)
  const before = near.listenerCount('data')
  lot.park('a', near)
  t.ok(near.listenerCount('data') > before, 'the lot watches a parked socket')
  const taken = lot.take('a')!
  t.equal(taken.listenerCount('data'), before, 'no data listener left')
  t.equal(taken.listenerCount('close'), near.listenerCount('close'))
  t.ok(taken.isPaused(), 'paused until the splice reads it')
  far.write('hello after the take')
  await new Promise(resolve => setTimeout(resolve, 50))
  const chunks: Buffer[] = []
  taken.on('data', chunk => chunks.push(chunk))
  // As the splice's pipe() does.
  taken.resume()
  await until(() => Buffer.concat(chunks).toString() === 'hello after the take', 5000, 'the bytes')
  t.same(exits, [], 'not counted as an exit')
})

t.test('per-ID and global caps; a waiting client always makes room', async t => {
  const { lot } = lotWith({ maxPerId: 2, maxTotal: 3 })
  const pairs = await socketPairs(t, 4, CLOSING)
  t.ok(lot.hasRoom('a'))
  lot.park('a', pairs[0].near)
  lot.park('a', pairs[1].near)
  t.notOk(lot.hasRoom('a'), 'a is at its per-ID cap')
  t.ok(lot.hasRoom('b'), 'b is not')
  lot.park('b', pairs[2].near)
  t.notOk(lot.hasRoom('b'), 'the lot is at its global cap')
  t.notOk(lot.hasRoom('c'))
  const ac = new AbortController()
  const waiting = lot.wait('c', 5000, ac.signal)
  t.ok(lot.hasRoom('c'), 'c has a waiting client, so its socket goes straight to it')
  lot.park('c', pairs[3].near)
  t.equal(socketOf(await waiting), pairs[3].near)
  t.same(lot.size, { parked: 3, waiting: 0 }, 'the handed-over socket was never parked')
})

t.test('waiters: served first in, first out, capped per ID and in all', async t => {
  const { lot } = lotWith({ maxWaitersPerId: 2, maxWaiters: 3 })
  const [s1, s2] = await socketPairs(t, 2, CLOSING)
  const first = lot.wait('a', 5000)
  const second = lot.wait('a', 5000)
  t.same(await lot.wait('a', 5000), { full: 'id' }, 'the third for a is refused at once, by the per-ID limit')
  const other = lot.wait('b', 5000)
  t.same(await lot.wait('c', 5000), { full: 'all' }, 'the lot holds three waiters in all')
  t.same(lot.size, { parked: 0, waiting: 3 })
  lot.park('a', s1.near)
  lot.park('a', s2.near)
  t.equal(socketOf(await first), s1.near, 'the first waiter gets the first socket')
  t.equal(socketOf(await second), s2.near)
  lot.evict('b')
  t.equal(await other, undefined)
  t.same(lot.size, { parked: 0, waiting: 0 })
})

t.test('waiters of one ID are served in turn by source, first in, first out within each', async t => {
  const { lot } = lotWith()
  const sockets = await socketPairs(t, 5, CLOSING)
  const hog = [1, 2, 3].map(() => lot.wait('a', 5000, undefined, 'hog'))
  const other = [1, 2].map(() => lot.wait('a', 5000, undefined, 'other'))
  for (const { near } of sockets) lot.park('a', near)
  const outcomes = await Promise.all([...hog, ...other])
  const got = outcomes.map(outcome => sockets.findIndex(({ near }) => near === socketOf(outcome)))
  t.same(got, [0, 2, 4, 1, 3], 'the hog, the other, the hog, the other, the hog: no source waits behind another\'s whole queue')
})

t.test('one source\'s share of an ID\'s places binds only while they run short', async t => {
  const { lot } = lotWith({ maxWaitersPerId: 8, maxWaitersPerSource: 2 })
  const hog = Array.from({ length: 6 }, () => lot.wait('a', 5000, undefined, 'hog'))
  t.same(lot.size.waiting, 6, 'alone, a source fills all but one share of the places')
  t.same(await lot.wait('a', 5000, undefined, 'hog'), { full: 'source' }, 'then it is refused')
  const others = [lot.wait('a', 5000, undefined, 'x'), lot.wait('a', 5000, undefined, 'y')]
  t.same(lot.size.waiting, 8, 'the last share went to others')
  t.same(await lot.wait('a', 5000, undefined, 'z'), { full: 'id' }, 'and the ID is full')
  lot.evict('a')
  t.same(await Promise.all([...hog, ...others]), Array(8).fill(undefined))

  const off = lotWith({ maxWaitersPerId: 4, maxWaitersPerSource: 0 }).lot
  const all = Array.from({ length: 4 }, () => off.wait('a', 5000, undefined, 'hog'))
  t.same(off.size.waiting, 4, 'a share of 0: one source may take every place')
  off.evict('a')
  await Promise.all(all)
})

t.test('a parked socket is taken at once, without waiting', async t => {
  const { lot } = lotWith({ maxWaiters: 0 })
  const { near } = await socketPair(t, CLOSING)
  lot.park('a', near)
  t.equal(socketOf(await lot.wait('a', 5000)), near, 'even with no room for waiters')
})

t.test('a wait ends on its timeout, at once for 0', async t => {
  const { lot } = lotWith()
  t.equal(await lot.wait('a', 0), undefined)
  const started = Date.now()
  t.equal(await lot.wait('a', 100), undefined)
  t.ok(Date.now() - started >= 90, 'after about the timeout')
  t.same(lot.size, { parked: 0, waiting: 0 })
})

t.test('a client that goes away while it waits leaves no waiter behind', async t => {
  const { lot } = lotWith()
  const { near } = await socketPair(t, CLOSING)
  const gone = new AbortController()
  const waiting = lot.wait('a', 10_000, gone.signal)
  t.same(lot.size, { parked: 0, waiting: 1 })
  gone.abort()
  t.equal(await waiting, undefined)
  t.same(lot.size, { parked: 0, waiting: 0 })
  lot.park('a', near)
  t.same(lot.size, { parked: 1, waiting: 0 }, 'the next socket is parked, not handed to the gone client')
})

t.test('a parked socket whose peer closes leaves the lot, counted as peer_closed', async t => {
  const { lot, exits } = lotWith()
  const [a, b] = await socketPairs(t, 2, CLOSING)
  lot.park('a', a.near)
  lot.park('a', b.near)
  a.far.socket.end()
  await until(() => lot.parkedFor('a') === 1, 5000, 'the closed socket to leave')
  t.same(exits, [['a', 'peer_closed']])
  t.ok(a.near.destroyed, 'destroyed by the lot')
  b.far.destroy()
  await until(() => lot.parkedFor('a') === 0, 5000, 'the reset socket to leave')
  t.same(exits, [['a', 'peer_closed'], ['a', 'peer_closed']])
  t.equal(lot.take('a'), undefined)
})

t.test('a parked socket that sends bytes before any client is matched is closed as early_data', async t => {
  const { lot, exits } = lotWith()
  const { near, far } = await socketPair(t, CLOSING)
  lot.park('a', near)
  far.write('too soon')
  await far.untilClosed()
  t.same(exits, [['a', 'early_data']])
  t.same(lot.size, { parked: 0, waiting: 0 })
})

t.test('a parked socket whose hidden server lets it go with the interim 100 is closed as retired', async t => {
  const { lot, exits } = lotWith()
  const [retired, broken] = await socketPairs(t, 2, CLOSING)
  lot.park('a', retired.near)
  lot.park('a', broken.near)
  retired.far.write('HTTP/1.1 100 Continue\r\n\r\n')
  await retired.far.untilClosed()
  // Anything else, even a 100 with more behind it, is a broken hidden server.
  broken.far.write('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n')
  await broken.far.untilClosed()
  t.same(exits, [['a', 'retired'], ['a', 'early_data']])
  t.same(lot.size, { parked: 0, waiting: 0 })
})

t.test('the retirement answer split by a layer in between is still a retirement; a bare status line start is not', async t => {
  const { lot, exits } = lotWith()
  const [split, short] = await socketPairs(t, 2, CLOSING)
  lot.park('a', split.near)
  lot.park('a', short.near)
  split.far.write('HTTP/1.1 100 Cont')
  await split.far.untilClosed()
  short.far.write('HTTP/1.1 1')
  await short.far.untilClosed()
  t.same(exits, [['a', 'retired'], ['a', 'early_data']])
})

t.test('a dead socket is skipped by take, and counted as a parked connection that left', async t => {
  const { lot, exits } = lotWith()
  const [dead, live] = await socketPairs(t, 2, CLOSING)
  lot.park('a', live.near)
  lot.park('a', dead.near)
  // Ended for writing but not yet closed: the lot cannot have noticed.
  dead.near.end()
  t.equal(lot.take('a'), live.near)
  t.ok(dead.near.destroyed)
  await new Promise(resolve => setTimeout(resolve, 20))
  t.same(exits, [['a', 'peer_closed']], 'once: its close, after take() released it, is not counted again')
})

t.test('evict closes what is parked for one ID and releases its waiters; closeAll empties the lot', async t => {
  const { lot, exits } = lotWith()
  const pairs = await socketPairs(t, 3, CLOSING)
  lot.park('a', pairs[0].near)
  lot.park('a', pairs[1].near)
  lot.park('b', pairs[2].near)
  const waiter = lot.wait('c', 10_000)
  t.equal(lot.evict('a'), 2)
  t.same(exits, [['a', 'evicted'], ['a', 'evicted']])
  await pairs[0].far.untilClosed()
  await pairs[1].far.untilClosed()
  t.equal(lot.parkedFor('b'), 1, 'other IDs keep theirs')
  lot.closeAll()
  t.equal(await waiter, undefined)
  await pairs[2].far.untilClosed()
  t.same(lot.size, { parked: 0, waiting: 0 })
  t.same(exits.map(e => e[1]), ['evicted', 'evicted', 'evicted'])
})

t.test('parked sockets share the lot\'s listeners: nothing per socket is kept alive while parked', async t => {
  const { lot, exits } = lotWith()
  const [a, b] = await socketPairs(t, 2, CLOSING)
  const own = (s: Socket, event: string): unknown[] => s.listeners(event)
  const before = { data: own(a.near, 'data').length, end: own(a.near, 'end').length, close: own(a.near, 'close').length }
  lot.park('a', a.near)
  lot.park('b', b.near)
  for (const event of ['data', 'end', 'close'] as const) {
    const added = own(a.near, event).slice(before[event])
    t.equal(added.length, 1, `one ${event} listener`)
    t.equal(added[0], own(b.near, event).slice(before[event])[0], `the same ${event} listener on both sockets`)
  }
  // The shared listeners still tell the sockets apart.
  b.far.write('x')
  await until(() => exits.length === 1, 5000, 'the early-data exit')
  t.same(exits, [['b', 'early_data']])
  t.equal(lot.parkedFor('a'), 1, 'the other socket stays parked')
  a.far.destroy()
  await until(() => exits.length === 2, 5000, 'the peer-closed exit')
  t.same(exits[1], ['a', 'peer_closed'])
})

t.test('a socket taken and not used is not put back once its hidden server sent bytes meanwhile', async t => {
  const { lot } = lotWith()
  const [quiet, noisy] = await socketPairs(t, 2, CLOSING)
  lot.park('a', noisy.near)
  lot.park('a', quiet.near)
  const first = lot.take('a')!
  const second = lot.take('a')!
  const evictions = lot.evictions
  noisy.far.write('HTTP/1.1 200 OK\r\n\r\nnot asked for')
  // Read into the stream's buffer while taken, as Node reads a paused socket until its high-water mark.
  await until(() => second.readableLength > 0, 5000, 'the bytes read')
  t.notOk(lot.putBack('a', second, evictions), 'bytes nobody asked for: left to the caller to close')
  t.ok(lot.putBack('a', first, evictions), 'a quiet one goes back')
  t.equal(lot.parkedFor('a'), 1)
})
