import { request } from 'node:http'
import { connect, type AddressInfo, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import { createDemoSite, WS_GREETING, type DemoSite } from '../../lib/demo/site'
import { MAX_MESSAGE } from '../../lib/demo/websocket'

/*
 * The demo's hidden page and its WebSocket echo, on their own:
 * the site listens on a port here, where in the demo the agent hands it
 * connections taken at the rendezvous.
 */

const ID = 'demo-box'

async function listen (t: Test): Promise<{ site: DemoSite, port: number }> {
  const site = createDemoSite({ id: ID })
  await new Promise<void>(resolve => site.server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    await site.close()
    await new Promise(resolve => site.server.close(resolve))
  })
  return { site, port: (site.server.address() as AddressInfo).port }
}

interface Answer { status: number, headers: Record<string, string | string[] | undefined>, body: string }

function http (port: number, method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers, agent: false }, res => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { text += chunk })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

/** A raw client: writes a handshake, then lets the test speak frames byte by byte. */
async function rawSocket (t: Test, port: number, head?: string | Buffer): Promise<{ socket: Socket, received: () => Buffer, until: (n: number) => Promise<Buffer>, closed: Promise<void> }> {
  const socket = connect(port, '127.0.0.1')
  t.teardown(() => socket.destroy())
  let data: Buffer = Buffer.alloc(0)
  const waiters: Array<() => void> = []
  socket.on('data', chunk => { data = Buffer.concat([data, chunk]); for (const w of waiters.splice(0)) w() })
  const closed = new Promise<void>(resolve => socket.once('close', () => { resolve(); for (const w of waiters.splice(0)) w() }))
  const until = async (n: number): Promise<Buffer> => {
    while (data.length < n && !socket.destroyed) await new Promise<void>(resolve => waiters.push(resolve))
    return data
  }
  await new Promise<void>(resolve => socket.once('connect', resolve))
  socket.write(head ?? 'GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n')
  return { socket, received: () => data, until, closed }
}

/** A client frame: masked, as RFC 6455 §5.1 requires (unless `mask` is false). */
/** One final, unmasked frame with a payload under 64 KiB, as a server sends it. */
function encodeFrame (opcode: number, payload: Buffer): Buffer {
  const header = payload.length < 126
    ? Buffer.from([0x80 | opcode, payload.length])
    : Buffer.from([0x80 | opcode, 126, payload.length >> 8, payload.length & 0xff])
  return Buffer.concat([header, payload])
}

/** What a client sends: masked unless told otherwise; `payload` under 64 KiB, or exactly 64 KiB + 1 with the 8-byte length. */
function clientFrame (opcode: number, payload: Buffer, opts: { fin?: boolean, mask?: boolean } = {}): Buffer {
  const plain = payload.length <= 0xffff
    ? encodeFrame(opcode, payload)
    : Buffer.concat([Buffer.from([0x80 | opcode, 127]), (() => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(payload.length)); return b })(), payload])
  if (opts.fin === false) plain[0] &= 0x7f
  if (opts.mask === false) return plain
  const headerLength = plain.length - payload.length
  const key = Buffer.from([0x12, 0x34, 0x56, 0x78])
  const masked = Buffer.from(payload)
  for (let i = 0; i < masked.length; i++) masked[i] ^= key[i & 3]
  const header = Buffer.from(plain.subarray(0, headerLength))
  header[1] |= 0x80
  return Buffer.concat([header, key, masked])
}

/** The close code of the first close frame in a server's frames after the 101, or undefined. */
function closeCodeIn (bytes: Buffer): number | undefined {
  let pos = bytes.indexOf('\r\n\r\n') + 4
  while (pos + 2 <= bytes.length) {
    const opcode = bytes[pos] & 0x0f
    let length = bytes[pos + 1] & 0x7f
    let offset = pos + 2
    if (length === 126) { length = bytes.readUInt16BE(pos + 2); offset += 2 } else if (length === 127) { length = Number(bytes.readBigUInt64BE(pos + 2)); offset += 8 }
    if (opcode === 0x8) return length >= 2 ? bytes.readUInt16BE(offset) : 1005
    pos = offset + length
  }
  return undefined
}

t.test('pages: /, /app.js, /logo.svg, and what is not there', async t => {
  const { port } = await listen(t)
  const index = await http(port, 'GET', '/?from=query')
  t.equal(index.status, 200)
  t.match(index.headers['content-type'], /^text\/html; charset=utf-8/)
  t.equal(index.headers['cache-control'], 'no-store')
  t.match(index.body, `<body data-rendezvous-id="${ID}">`)
  t.match(index.body, '<script src="/app.js"></script>')
  t.match(index.body, '<img id="logo" src="/logo.svg"')
  t.match(index.body, '<form id="form" method="post" action="/submit">')
  const js = await http(port, 'GET', '/app.js')
  t.match(js.headers['content-type'], /^text\/javascript/)
  t.match(js.body, "'/ws?rendezvous=' + encodeURIComponent(id)")
  const logo = await http(port, 'GET', '/logo.svg')
  t.equal(logo.headers['content-type'], 'image/svg+xml')
  t.match(logo.body, /<svg [^>]*width="64" height="64"/)
  const head = await http(port, 'HEAD', '/')
  t.equal(head.status, 200)
  t.equal(head.body, '')
  t.equal((await http(port, 'GET', '/nope')).status, 404)
  t.equal((await http(port, 'GET', '/__proto__')).status, 404)
  t.equal((await http(port, 'POST', '/')).status, 405)
  const get = await http(port, 'GET', '/submit')
  t.equal(get.status, 405)
  t.equal(get.headers.allow, 'POST')
})

t.test('the form: a value is echoed escaped; other bodies are refused', async t => {
  const { port } = await listen(t)
  const form = { 'Content-Type': 'application/x-www-form-urlencoded; charset=UTF-8' }
  const ok = await http(port, 'POST', '/submit', new URLSearchParams({ message: '<script>"x"&\'y\'</script> é' }).toString(), form)
  t.equal(ok.status, 200)
  t.match(ok.body, '<strong id="value">&#60;script&#62;&#34;x&#34;&#38;&#39;y&#39;&#60;/script&#62; é</strong>')
  t.notMatch(ok.body, '<script>')
  const empty = await http(port, 'POST', '/submit', '', form)
  t.match(empty.body, '<strong id="value"></strong>')
  t.equal((await http(port, 'POST', '/submit', '{}', { 'Content-Type': 'application/json' })).status, 415)
  t.equal((await http(port, 'POST', '/submit', 'message=' + 'a'.repeat(20_000), form)).status, 413)
})

t.test('WebSocket: greeting, text and binary echo, fragments, large frames, ping', async t => {
  const { port, site } = await listen(t)
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?rendezvous=${ID}`)
  t.teardown(() => ws.terminate())
  const messages: Array<{ data: Buffer, binary: boolean }> = []
  let wake: (() => void) | undefined
  ws.on('message', (data, binary) => { messages.push({ data: data as Buffer, binary }); wake?.() })
  const next = async (): Promise<{ data: Buffer, binary: boolean }> => {
    while (messages.length === 0) await new Promise<void>(resolve => { wake = resolve })
    return messages.shift()!
  }
  await new Promise<void>((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
  t.same(String((await next()).data), WS_GREETING, 'the server speaks first')
  t.equal(site.stats.websockets, 1)

  ws.send('héllo')
  t.same(await next(), { data: Buffer.from('héllo'), binary: false }, 'text stays text')
  ws.send(Buffer.from([0, 1, 2, 255]))
  t.same(await next(), { data: Buffer.from([0, 1, 2, 255]), binary: true }, 'binary stays binary')
  ws.send('frag', { fin: false })
  ws.send('ment', { fin: true })
  t.equal(String((await next()).data), 'fragment', 'fragments are joined')
  const medium = 'm'.repeat(300)
  ws.send(medium)
  t.equal(String((await next()).data), medium, '16-bit length')
  const large = Buffer.alloc(MAX_MESSAGE, 7)
  ws.send(large)
  t.same((await next()).data, large, 'a 64-bit length up to the limit')
  const pong = new Promise<Buffer>(resolve => ws.once('pong', resolve))
  ws.ping('are you there')
  t.equal(String(await pong), 'are you there')

  const closed = new Promise<number>(resolve => ws.once('close', code => resolve(code)))
  ws.close(4000, 'done')
  t.equal(await closed, 4000, 'the close code is echoed')
})

t.test('WebSocket: close() says 1001 to open sockets', async t => {
  const { port, site } = await listen(t)
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`)
  t.teardown(() => ws.terminate())
  await new Promise<void>((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
  const closed = new Promise<number>(resolve => ws.once('close', code => resolve(code)))
  await site.close()
  t.equal(await closed, 1001)
  t.same(site.stats, { connections: 0, websockets: 0 })
})

t.test('WebSocket: what the echo refuses closes with the RFC codes', async t => {
  const { port } = await listen(t)
  const cases: Array<[string, Buffer, number]> = [
    ['an unmasked frame', clientFrame(0x1, Buffer.from('x'), { mask: false }), 1002],
    ['invalid UTF-8 in a text message', clientFrame(0x1, Buffer.from([0xc3, 0x28])), 1007],
    ['a frame over the limit', clientFrame(0x2, Buffer.alloc(MAX_MESSAGE + 1)), 1009],
    ['fragments over the limit', Buffer.concat([clientFrame(0x2, Buffer.alloc(MAX_MESSAGE), { fin: false }), clientFrame(0x0, Buffer.alloc(1))]), 1009],
    ['a one-byte close body', clientFrame(0x8, Buffer.from([3])), 1002]
  ]
  for (const [name, bytes, code] of cases) {
    await t.test(name, async t => {
      const raw = await rawSocket(t, port)
      await raw.until(1)
      raw.socket.write(bytes)
      await raw.closed
      t.match(raw.received().toString('latin1'), /^HTTP\/1\.1 101 Switching Protocols\r\n[^]*Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=\r\n/)
      t.equal(closeCodeIn(raw.received()), code)
    })
  }
})

t.test('WebSocket: a frame split across reads, and frames sent with the handshake', async t => {
  const { port } = await listen(t)
  const frame = clientFrame(0x1, Buffer.from('slowly'))
  const raw = await rawSocket(t, port, Buffer.concat([Buffer.from('GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'), clientFrame(0x1, Buffer.from('early'))]))
  const greeting = encodeFrame(0x1, Buffer.from(WS_GREETING))
  const early = encodeFrame(0x1, Buffer.from('early'))
  while (raw.received().indexOf('\r\n\r\n') === -1 && !raw.socket.destroyed) await raw.until(raw.received().length + 1)
  const headLength = raw.received().indexOf('\r\n\r\n') + 4
  await raw.until(headLength + greeting.length + early.length)
  t.same(raw.received().subarray(headLength), Buffer.concat([greeting, early]), 'bytes after the head are not lost')
  for (const byte of frame) {
    raw.socket.write(Buffer.from([byte]))
    await new Promise(resolve => setImmediate(resolve))
  }
  const echoed = encodeFrame(0x1, Buffer.from('slowly'))
  const total = headLength + greeting.length + early.length + echoed.length
  t.same((await raw.until(total)).subarray(total - echoed.length, total), echoed)
})

t.test('WebSocket: bad handshakes are refused', async t => {
  const { port } = await listen(t)
  const base = (lines: string): string => `GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n${lines}\r\n`
  const cases: Array<[string, string, RegExp]> = [
    ['no key', base('Sec-WebSocket-Version: 13\r\n'), /^HTTP\/1\.1 400 /],
    ['a short key', base('Sec-WebSocket-Key: abc\r\nSec-WebSocket-Version: 13\r\n'), /^HTTP\/1\.1 400 /],
    ['another version', base('Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 7\r\n'), /^HTTP\/1\.1 400 [^]*Sec-WebSocket-Version: 13, 8\r\n/],
    ['another path', 'GET /other HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n', /^HTTP\/1\.1 404 /]
  ]
  for (const [name, head, pattern] of cases) {
    await t.test(name, async t => {
      const raw = await rawSocket(t, port, head)
      await raw.closed
      t.match(raw.received().toString('latin1'), pattern)
    })
  }
})
