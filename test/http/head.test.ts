import t from 'tap'
import { createServer, type IncomingMessage } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import { once } from 'node:events'
import { serializeHead } from '../../lib/http/head'

t.test('keeps names, order and duplicates, drops every Authorization', async (t) => {
  const out = serializeHead({
    method: 'GET',
    url: '/a/b?c=d&rendezvous=X',
    httpVersion: '1.1',
    rawHeaders: [
      'Host', 'relay.example',
      'authorization', 'Digest username="x"',
      'X-Custom-HEADER', 'One',
      'x-custom-header', 'Two',
      'AUTHORIZATION', 'Basic YTpi',
      'Cookie', 'a=1',
      'AuThOrIzAtIoN', 'Bearer t',
      'Cookie', 'b=2',
      'Proxy-Authorization', 'Basic YTpi'
    ]
  })
  t.equal(out.toString('latin1'),
    'GET /a/b?c=d&rendezvous=X HTTP/1.1\r\n' +
    'Host: relay.example\r\n' +
    'X-Custom-HEADER: One\r\n' +
    'x-custom-header: Two\r\n' +
    'Cookie: a=1\r\n' +
    'Cookie: b=2\r\n' +
    'Proxy-Authorization: Basic YTpi\r\n' +
    '\r\n')
})

t.test('trims only SP and HTAB at the edges of a value', async (t) => {
  const out = serializeHead({
    method: 'POST',
    url: '*',
    httpVersion: '1.0',
    rawHeaders: ['A', ' \t spaced  out \t ', 'B', '', 'C', '\u00a0nbsp\u00a0', 'D', '   ']
  })
  t.equal(out.toString('latin1'), 'POST * HTTP/1.0\r\nA: spaced  out\r\nB: \r\nC: \u00a0nbsp\u00a0\r\nD: \r\n\r\n')
})

t.test('latin1 strings turn back into the original bytes', async (t) => {
  const out = serializeHead({ method: 'GET', url: '/', httpVersion: '1.1', rawHeaders: ['X-Name', 'caf\u00e9 \u00ff'] })
  const expected = Buffer.concat([
    Buffer.from('GET / HTTP/1.1\r\nX-Name: caf'),
    Buffer.from([0xe9, 0x20, 0xff]),
    Buffer.from('\r\n\r\n')
  ])
  t.ok(out.equals(expected), out.toString('hex'))
})

t.test('an empty head and an odd trailing name', async (t) => {
  t.equal(serializeHead({ method: 'OPTIONS', url: '/', httpVersion: '1.1', rawHeaders: [] }).toString(), 'OPTIONS / HTTP/1.1\r\n\r\n')
  t.equal(serializeHead({ method: 'GET', url: '/', httpVersion: '1.1', rawHeaders: ['A', 'b', 'Dangling'] }).toString(), 'GET / HTTP/1.1\r\nA: b\r\n\r\n')
})

t.test('refuses line breaks that would smuggle a second request', async (t) => {
  const base = { method: 'GET', url: '/', httpVersion: '1.1', rawHeaders: ['A', 'b'] }
  t.throws(() => serializeHead({ ...base, url: '/ HTTP/1.1\r\nX: y' }), TypeError)
  t.throws(() => serializeHead({ ...base, method: 'GET\n' }), TypeError)
  t.throws(() => serializeHead({ ...base, rawHeaders: ['A', 'b\r\nEvil: 1'] }), TypeError)
  t.throws(() => serializeHead({ ...base, rawHeaders: ['A\n', 'b'] }), TypeError)
  t.throws(() => serializeHead({ ...base, rawHeaders: ['A', 'b\u0000'] }), TypeError)
  t.doesNotThrow(() => serializeHead({ ...base, rawHeaders: ['Authorization', 'x\r\ny'] }), 'a dropped field cannot smuggle anything')
})

t.test('round trip through the real Node parser', async (t) => {
  let seen: IncomingMessage | undefined
  const server = createServer((req, res) => {
    seen = req
    res.end()
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { server.close() })

  const client = connect((server.address() as AddressInfo).port, '127.0.0.1')
  const head = Buffer.concat([
    Buffer.from(
      'PATCH /p?q=%20&rendezvous=ID HTTP/1.1\r\n' +
      'Host: 127.0.0.1\r\n' +
      'X-Mixed-Case:   padded value  \r\n' +
      'Authorization: Digest username="ID", realm="rendezvous"\r\n' +
      'x-dup: 1\r\n' +
      'X-Dup: 2\r\n' +
      'authorization: Basic SUQ6cA==\r\n' +
      'X-Bytes: '),
    Buffer.from([0xe9, 0xa0, 0x41]),
    Buffer.from('\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
  ])
  client.end(head)
  client.resume()
  await once(client, 'close')

  if (seen?.method === undefined || seen.url === undefined) throw new Error('request not parsed')
  const out = serializeHead({ method: seen.method, url: seen.url, httpVersion: seen.httpVersion, rawHeaders: seen.rawHeaders })
  const expected = Buffer.concat([
    Buffer.from(
      'PATCH /p?q=%20&rendezvous=ID HTTP/1.1\r\n' +
      'Host: 127.0.0.1\r\n' +
      'X-Mixed-Case: padded value\r\n' +
      'x-dup: 1\r\n' +
      'X-Dup: 2\r\n' +
      'X-Bytes: '),
    Buffer.from([0xe9, 0xa0, 0x41]),
    Buffer.from('\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
  ])
  t.equal(out.toString('latin1'), expected.toString('latin1'))
  t.ok(out.equals(expected), 'byte for byte')
})
