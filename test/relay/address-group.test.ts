import t from 'tap'
import fc from 'fast-check'
import { BlockList, Server } from 'node:net'
import { PassThrough } from 'node:stream'
import type { Socket } from 'node:net'
import { addressKeyer } from '../../lib/relay/address-group'
import { AuthThrottle } from '../../lib/relay/auth-throttle'
import { capConnections, type CapRefusal } from '../../lib/relay/connection-cap'
import { MemoryThrottleStore } from '../../lib/stores/memory-throttle-store'

/*
 * Per-address limits count an IPv6 client by its subnet: one host can send
 * from every address of its /64. Loopback offers no second IPv6 address to
 * connect from, so these drive the keying, the throttle and the cap with
 * addresses given by hand; limits.test.ts covers the cap on real sockets.
 */

const key64 = addressKeyer(64)

t.test('IPv4 addresses, and IPv4 written as IPv6 by a dual-stack listener, count as themselves', async t => {
  t.equal(key64('10.1.2.3'), '10.1.2.3')
  t.equal(key64('::ffff:10.1.2.3'), '10.1.2.3')
  t.equal(key64('::FFFF:10.1.2.3'), '10.1.2.3')
  t.not(key64('10.1.2.3'), key64('10.1.2.4'))
})

t.test('IPv6 addresses of one /64 share a key, and others do not', async t => {
  t.equal(key64('2001:db8:1:2::1'), '2001:db8:1:2::/64', 'written as Node writes addresses (RFC 5952), so a grep for the prefix finds it')
  t.equal(key64('2001:db8:1:2:aaaa:bbbb:cccc:dddd'), key64('2001:DB8:1:2::1'))
  t.equal(key64('fe80::1%eth0'), key64('fe80::2%lo'), 'a zone does not make a new budget')
  t.equal(key64('::1'), '::/64')
  t.not(key64('2001:db8:1:2::1'), key64('2001:db8:1:3::1'))
  t.equal(key64('64:ff9b::192.0.2.1'), '192.0.2.1', 'a NAT64 address counts as the IPv4 client it carries')
  t.equal(key64('64:ff9b::c000:202'), '192.0.2.2')
  t.equal(key64('64:ff9b:1::c000:202'), '64:ff9b:1::/64', 'not the well-known prefix: an IPv6 address like any other')
  t.equal(key64('2001:db8::192.0.2.1'), '2001:db8::/64', 'an IPv4 tail is read as the last 32 bits')
  t.equal(addressKeyer(128)('2001:db8::1'), '2001:db8::1/128')
  t.equal(addressKeyer(128)('2001:0:0:1:0:0:0:1'), '2001:0:0:1::1/128', 'the longest run of zeros is the one shortened')
  t.equal(addressKeyer(128)('2001:db8:0:1:1:1:1:1'), '2001:db8:0:1:1:1:1:1/128', 'a single zero group stays')
  t.equal(addressKeyer(128)('1:0:0:2:0:0:3:4'), '1::2:0:0:3:4/128', 'of equal runs, the first')
  t.not(addressKeyer(128)('2001:db8::1'), addressKeyer(128)('2001:db8::2'))
  t.equal(addressKeyer(56)('2001:db8:1:2ff::1'), addressKeyer(56)('2001:db8:1:200::1'))
  t.not(addressKeyer(56)('2001:db8:1:2ff::1'), addressKeyer(56)('2001:db8:1:300::1'))
})

const GROUPS = fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 })
const written = (groups: number[]): string => groups.map(g => g.toString(16)).join(':')

t.test('two IPv6 addresses share a key exactly when one lies in the other\'s subnet, as Node\'s BlockList reckons it', async t => {
  fc.assert(fc.property(GROUPS, fc.ipV6(), fc.integer({ min: 1, max: 128 }), fc.integer({ min: 0, max: 255 }), (groups, other, bits, pick) => {
    const a = written(groups)
    // Half the cases: b is a with one bit flipped, inside or outside the subnet; the others, any address at all.
    const flipped = [...groups]
    flipped[Math.floor((pick % 128) / 16)]! ^= 0x8000 >> (pick % 16)
    const b = pick < 128 ? written(flipped) : other
    const keyOf = addressKeyer(bits)
    const list = new BlockList()
    list.addSubnet(a, bits, 'ipv6')
    return (keyOf(a) === keyOf(b)) === list.check(b, 'ipv6')
  }), { numRuns: 2000 })
})

t.test('a key names its subnet as Node writes that address', async t => {
  fc.assert(fc.property(GROUPS, fc.integer({ min: 1, max: 128 }), (groups, bits) => {
    const [prefix, length] = addressKeyer(bits)(written(groups)).split('/')
    const list = new BlockList()
    list.addSubnet(prefix!, bits, 'ipv6')
    return length === String(bits) && list.rules[0] === `Subnet: IPv6 ${prefix!}/${bits}` && list.check(written(groups), 'ipv6')
  }), { numRuns: 2000 })
})

t.test('failed CONNECTs from addresses of one /64 share their counters; another /64 has its own', async t => {
  const throttle = new AuthThrottle(new MemoryThrottleStore(), { perPair: 10, perAddress: 100, perIdTotp: 30, window: 60_000, coolOff: 60_000 }, 'authfail', key64)
  for (let i = 1; i <= 9; i++) t.equal(await throttle.fail(`2001:db8:1:2::${i.toString(16)}`, 'victim'), 0)
  t.equal(await throttle.fail('2001:db8:1:2:ffff::1', 'victim'), 60, 'the 10th guess trips, from yet another address of the /64')
  t.equal(await throttle.check('2001:db8:1:2::beef', 'victim'), 60, 'a fresh address of the /64 is cooled off too')
  t.equal(await throttle.check('2001:db8:1:3::1', 'victim'), 0, 'the next /64 is not')
  t.equal(await throttle.check('10.0.0.1', 'victim'), 0)
})

/** A stand-in for an accepted socket: the cap reads its address and listens for its close. */
function fakeSocket (remoteAddress: string): Socket {
  const s = new PassThrough() as unknown as Socket & { remoteAddress: string }
  Object.defineProperty(s, 'remoteAddress', { value: remoteAddress })
  return s
}

t.test('the per-address cap counts an IPv6 client by its subnet', async t => {
  const server = new Server()
  const refused: CapRefusal[] = []
  capConnections(server, { perAddress: 2, total: 0 }, key64, r => refused.push(r))
  const first = fakeSocket('2001:db8::1')
  server.emit('connection', first)
  server.emit('connection', fakeSocket('2001:db8::2'))
  const third = fakeSocket('2001:db8::3')
  server.emit('connection', third)
  t.ok(third.destroyed, 'a third address of the /64 is closed at accept')
  t.same(refused, [{ reason: 'per_address_cap', address: '2001:db8::3', key: '2001:db8::/64' }])
  const elsewhere = fakeSocket('2001:db8:0:1::1')
  server.emit('connection', elsewhere)
  t.notOk(elsewhere.destroyed, 'another /64 has its own count')
  first.destroy()
  await new Promise(resolve => setImmediate(resolve))
  const after = fakeSocket('2001:db8::4')
  server.emit('connection', after)
  t.notOk(after.destroyed, 'a close gives the /64 its place back')
})

t.test('a socket is uncounted once, whether exempted after its close or closed after its exemption', async t => {
  const server = new Server()
  const cap = capConnections(server, { perAddress: 0, total: 2 }, key64, () => {})
  const connect = (address: string): Socket => {
    const socket = fakeSocket(address)
    server.emit('connection', socket)
    return socket
  }
  const closed = connect('10.0.0.1')
  closed.destroy()
  await new Promise(resolve => setImmediate(resolve))
  cap.exempt(closed)
  const parked = connect('10.0.0.2')
  cap.exempt(parked)
  parked.destroy()
  await new Promise(resolve => setImmediate(resolve))
  const open = [connect('10.0.0.3'), connect('10.0.0.4')]
  t.same(open.map(s => s.destroyed), [false, false], 'two open under a total of 2')
  t.ok(connect('10.0.0.5').destroyed, 'a third is refused: no socket was uncounted twice')
})
