import t from 'tap'
import Fastify from 'fastify'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import WebSocket, { WebSocketServer } from 'ws'
import rendezvous, { FileRegistry, MemoryRegistry } from '../lib/index'
import { startRendezvous, untilParked } from './helpers/rendezvous'
import { tlsCert } from './helpers/tls'
import { SECRET } from './helpers/fixtures'

t.test('app.close() closes parked, waiting and spliced sockets, and leaves no listener behind', async t => {
  const relay = await startRendezvous({ tls: true })
  const server = relay.app.server
  const before = { connect: server.listenerCount('connect'), secure: server.listenerCount('secureConnection') }
  const parked = await relay.park('hub-1')
  const spliceHidden = await relay.park('hub-1')
  await untilParked(relay, 2)
  const client = await relay.open()
  client.write('GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="hub-1"\r\n\r\n')
  await spliceHidden.untilText('\r\n\r\n')
  t.equal(relay.app.rendezvous.stats().spliced, 1)
  await relay.close()
  await Promise.all([parked.untilClosed(), spliceHidden.untilClosed(), client.untilClosed()])
  t.equal(server.listenerCount('connect'), before.connect - 1)
  t.equal(server.listenerCount('secureConnection'), before.secure - 1)
  t.same(relay.app.rendezvous.stats(), { parked: 0, waiting: 0, spliced: 0 })
})

t.test('closeGracePeriod lets a spliced exchange finish', async t => {
  const relay = await startRendezvous({ plugin: { closeGracePeriod: 2000 } })
  const hidden = await relay.park('hub-1')
  const client = await relay.open()
  client.write('GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="hub-1"\r\n\r\n')
  await hidden.untilText('\r\n\r\n')
  const closing = relay.close()
  await new Promise(resolve => setTimeout(resolve, 100))
  hidden.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlate')
  await client.untilText('late')
  hidden.socket.end()
  await closing
  t.pass('the response made it out during the grace period')
})

t.test('registering on an HTTP/2 server is refused with a clear error', async t => {
  const app = Fastify({ http2: true })
  await t.rejects(async () => { await app.register(rendezvous, { registry: new MemoryRegistry() }).ready() }, { code: 'FST_RENDEZVOUS_BAD_OPTION' })
  await app.close()
})

t.test('registering twice on one server is refused, saying so', async t => {
  for (const layout of ['twice on the root', 'once in each of two plugins'] as const) {
    const app = Fastify()
    if (layout === 'twice on the root') {
      app.register(rendezvous, { registry: new MemoryRegistry() })
      app.register(rendezvous, { registry: new MemoryRegistry() })
    } else {
      app.register(async child => { await child.register(rendezvous, { registry: new MemoryRegistry() }) })
      app.register(async child => { await child.register(rendezvous, { registry: new MemoryRegistry() }) })
    }
    await t.rejects(async () => { await app.ready() }, { code: 'FST_RENDEZVOUS_BAD_OPTION', message: /already registered on this server: register it once, on the root instance/ }, layout)
    await app.close()
  }
})

t.test('registering inside an encapsulated plugin warns that the challenge then covers only that plugin', async t => {
  const lines: Array<{ level: number, msg: string }> = []
  const stream = { write: (line: string) => { lines.push(JSON.parse(line)) } }
  const app = Fastify({ logger: { level: 'warn', stream } })
  app.register(async child => { await child.register(rendezvous, { registry: new MemoryRegistry() }) })
  await app.ready()
  t.match(lines.filter(l => l.level === 40).map(l => l.msg), [/registered inside an encapsulated plugin: its Digest challenge then answers only that plugin's unrouted requests/])
  await app.close()
  const root = Fastify({ logger: { level: 'warn', stream } })
  lines.length = 0
  await root.register(rendezvous, { registry: new MemoryRegistry() }).ready()
  t.same(lines, [], 'no warning on the root instance')
  await root.close()
})

t.test('a prefix, which the plugin cannot honour, is warned about; the health route stays where healthPath says', async t => {
  const lines: Array<{ level: number, msg: string }> = []
  const stream = { write: (line: string) => { lines.push(JSON.parse(line)) } }
  const app = Fastify({ logger: { level: 'warn', stream } })
  await app.register(rendezvous, { registry: new MemoryRegistry(), healthPath: '/healthz', prefix: '/rv' } as Parameters<typeof rendezvous>[1])
  await app.ready()
  t.match(lines.filter(l => l.level === 40).map(l => l.msg), [/ignores the prefix it was registered with: the relay answers for the whole server; move its routes with healthPath and readyPath/])
  t.equal((await app.inject('/healthz')).statusCode, 200)
  await app.close()
})

t.test('bad options are refused by name', async t => {
  const app = Fastify()
  await t.rejects(async () => { await app.register(rendezvous, { waitTimeout: -1 }).ready() }, /waitTimeout/)
  await app.close()
})

t.test('require() returns the plugin and .default is the same function', async t => {
  const mod = require('../lib/index')
  t.equal(typeof mod, 'function')
  t.equal(mod.default, mod)
})

t.test('a WebSocket reaches the hidden server through ?rendezvous=ID and echoes both ways', async t => {
  const hiddenHttp: Server = createServer()
  const wss = new WebSocketServer({ server: hiddenHttp })
  const seenUrls: string[] = []
  wss.on('connection', (ws, req) => {
    seenUrls.push(req.url ?? '')
    ws.on('message', (data, binary) => ws.send(binary ? data : `echo:${String(data)}`, { binary }))
  })
  const relay = await startRendezvous({ tls: true })
  t.teardown(async () => {
    await relay.close()
    wss.close()
    hiddenHttp.close()
  })
  const hidden = await relay.park('hub-1')
  // The parked socket becomes the hidden server's connection, as the agent's http.Server mode does it.
  hidden.socket.removeAllListeners('data')
  hiddenHttp.emit('connection', hidden.socket)
  const ws = new WebSocket(`wss://127.0.0.1:${relay.port}/live?rendezvous=HUB-1`, { ca: tlsCert })
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
  const replies: string[] = []
  const got = new Promise<void>(resolve => ws.on('message', data => { replies.push(String(data)); if (replies.length === 2) resolve() }))
  ws.send('hello')
  ws.send('again')
  await got
  t.same(replies, ['echo:hello', 'echo:again'])
  t.same(seenUrls, ['/live?rendezvous=HUB-1'], 'the parameter is forwarded unchanged')
  ws.close()
})

t.test('the plugin works next to the app\'s own async onRequest hooks, registered first', async t => {
  const relay = await startRendezvous({
    before: app => {
      app.addHook('onRequest', async () => { await new Promise(resolve => setTimeout(resolve, 5)) })
    }
  })
  t.teardown(relay.close)
  const hidden = await relay.park('hub-1')
  const client = await relay.open()
  client.write('POST / HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="hub-1"\r\nContent-Length: 3\r\n\r\nabc')
  await hidden.untilText('abc')
  t.equal(hidden.text, 'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc')
  client.destroy()
})

t.test('the file registry in dataDir is used when no registry is given', async t => {
  const dir = t.testdir()
  const seed = new FileRegistry({ dataDir: dir })
  await seed.ready()
  await seed.add({ id: 'file-hub', secret: SECRET })
  await seed.close()
  const app = Fastify()
  await app.register(rendezvous, { dataDir: dir })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  t.ok(app.rendezvous.registry.get('file-hub'))
  t.equal((app.server.address() as AddressInfo).address, '127.0.0.1')
})
