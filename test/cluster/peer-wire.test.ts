import t from 'tap'
import { socketPairs } from '../helpers/socket-pair'
import {
  answerLine, GO_LINE, lineEnd, looksLikeTls, PEER_PROTOCOL, parseAnswerConnId, parseAnswerLine, parseRequestLine,
  peerVersionOf, readFrame, requestLine
} from '../../lib/cluster/peer-wire'

const request = { target: 'node-b', id: '00000000-0000-4000-8000-000000000000', token: 'v1.1.n.m', length: 42 }

t.test('version 2 of the framing: the request line, the answer, and the GO that commits', async t => {
  t.equal(PEER_PROTOCOL, 'RENDEZVOUS-PEER/2')
  t.equal(requestLine(request), 'RENDEZVOUS-PEER/2 node-b 00000000-0000-4000-8000-000000000000 v1.1.n.m 42\r\n')
  t.same(parseRequestLine(requestLine(request).slice(0, -2)), request)
  t.equal(answerLine(200, 'ok 0a1b'), 'RENDEZVOUS-PEER/2 200 ok 0a1b\r\n')
  t.equal(parseAnswerLine('RENDEZVOUS-PEER/2 200 ok 0a1b\r\n'), 200)
  t.equal(parseAnswerConnId('RENDEZVOUS-PEER/2 200 ok 0a1b\r\n'), '0a1b')
  t.equal(GO_LINE, 'GO\r\n')
})

t.test('a node never takes version 1 for version 2, either way', async t => {
  // Version 1 delivered the head at once: a node of version 2 must not serve it, nor believe its 200.
  t.equal(parseRequestLine('RENDEZVOUS-PEER/1 node-b 00000000-0000-4000-8000-000000000000 v1.1.n.m 42'), undefined)
  t.equal(parseAnswerLine('RENDEZVOUS-PEER/1 200 ok 0a1b\r\n'), undefined)
  t.equal(parseAnswerConnId('RENDEZVOUS-PEER/1 200 ok 0a1b\r\n'), undefined)
  t.equal(peerVersionOf('RENDEZVOUS-PEER/1 node-b x y 0'), '1', 'but it can tell which version the other node speaks')
  t.equal(peerVersionOf('RENDEZVOUS-PEER/2 400 malformed request'), '2')
  t.equal(peerVersionOf('GET / HTTP/1.1'), undefined)
  t.equal(answerLine(505, 'this node speaks RENDEZVOUS-PEER/2', 'RENDEZVOUS-PEER/1'), 'RENDEZVOUS-PEER/1 505 this node speaks RENDEZVOUS-PEER/2\r\n', 'a refusal in the old framing')
})

t.test('a TLS record where a line was expected is recognised from its first bytes', async t => {
  t.ok(looksLikeTls(Buffer.from([0x16, 0x03, 0x01, 0x00, 0xf4])), 'a ClientHello')
  t.ok(looksLikeTls(Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02])), 'an alert')
  t.notOk(looksLikeTls(Buffer.from('RENDEZVOUS-PEER/2 200 ok\r\n')))
  t.notOk(looksLikeTls(Buffer.from([0x16])), 'not from one byte')
})

t.test('readFrame gives back every byte after GO, in order, for the splice', async t => {
  const [pair] = await socketPairs(t, 1)
  const { near, far } = pair!
  far.socket.write(Buffer.concat([Buffer.from(GO_LINE), Buffer.from([0, 0xff, 0x0d, 0x0a]), Buffer.from('body')]))
  const line = await readFrame(near, lineEnd, 5000)
  t.equal(line.toString('latin1'), GO_LINE)
  far.socket.write('more')
  const rest: Buffer[] = []
  near.on('data', chunk => rest.push(chunk))
  near.resume()
  await new Promise(resolve => setTimeout(resolve, 200))
  t.same(Buffer.concat(rest), Buffer.concat([Buffer.from([0, 0xff, 0x0d, 0x0a]), Buffer.from('bodymore')]))
})

t.test('readFrame counts a frame that arrived while the process was stopped, though its timer is due', async t => {
  const [pair] = await socketPairs(t, 1)
  const { near, far } = pair!
  const reading = readFrame(near, lineEnd, 50)
  far.socket.write(GO_LINE)
  // A stopped process: when it runs again, its due timers come before the reads of what arrived meanwhile.
  const until = Date.now() + 300
  while (Date.now() < until) { /* busy: nothing else runs */ }
  const line = await reading
  t.equal(line.toString('latin1'), GO_LINE)
})

t.test('readFrame still times out when nothing came', async t => {
  const [pair] = await socketPairs(t, 1)
  await t.rejects(readFrame(pair!.near, lineEnd, 50), /peer link timed out/)
})
