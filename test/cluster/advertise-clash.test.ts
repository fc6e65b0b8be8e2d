import t from 'tap'
import { until } from '../helpers/until'
import { LogLines } from './log-lines'
import { startNode } from './nodes'
import { freePort, redisMissing, startRedis } from './redis-server'

/*
 * Two live nodes given the same --advertise (one copied from the other)
 * published one peer address under two node IDs. Nothing said so: the one
 * that listens there answered the other's links 421 and logged, at most,
 * that a restarted node's registration would soon replace the old one,
 * which never happened. Each node now logs an error naming the address and
 * the other node, once a minute while it lasts.
 */

const skip = redisMissing() ?? false
const CLASH = 'another live node advertises the same peer address as this one: other nodes cannot reach what one of the two holds; give each node its own --advertise (cluster.advertise)'

t.test('two live nodes advertising one peer address each log an error naming the address and the other node', { skip }, async t => {
  const redis = await startRedis(t)
  const port = await freePort()
  const address = `127.0.0.1:${port}`
  const aLog = new LogLines()
  const bLog = new LogLines()
  const a = await startNode('node-a', redis.url, {}, aLog, { peerPort: port })
  t.teardown(async () => { await a.close() })
  // B listens elsewhere and tells the others A's address.
  const b = await startNode('node-b', redis.url, {}, bLog, { advertise: address })
  t.teardown(async () => { await b.close() })
  t.equal(a.app.rendezvous.cluster!.peerAddress, address)
  t.equal(b.app.rendezvous.cluster!.peerAddress, address)
  await until(() => aLog.find(CLASH).length > 0 && bLog.find(CLASH).length > 0, 5000, 'both nodes log the clash')
  t.match(aLog.find(CLASH)[0], { level: 50, node: 'node-a', peer: 'node-b', address }, 'A names B and the address')
  t.match(bLog.find(CLASH)[0], { level: 50, node: 'node-b', peer: 'node-a', address }, 'B names A and the address')
  // Heartbeats every 200 ms: the repeats are debug lines, one error a minute.
  await new Promise(resolve => setTimeout(resolve, 1000))
  t.equal(aLog.find(CLASH).filter(l => l.level === 50).length, 1, 'one error on A')
  t.equal(bLog.find(CLASH).filter(l => l.level === 50).length, 1, 'one error on B')
  t.ok(aLog.find(CLASH).length > 1, 'the repeats at debug')
})

t.test('nodes with their own addresses log no clash', { skip }, async t => {
  const redis = await startRedis(t)
  const aLog = new LogLines()
  const bLog = new LogLines()
  const a = await startNode('node-a', redis.url, {}, aLog)
  t.teardown(async () => { await a.close() })
  const b = await startNode('node-b', redis.url, {}, bLog)
  t.teardown(async () => { await b.close() })
  await new Promise(resolve => setTimeout(resolve, 1000))
  t.same([...aLog.find(CLASH), ...bLog.find(CLASH)], [])
})
