import t from 'tap'
import { connect, type Socket } from 'node:net'
import { Writable } from 'node:stream'
import { createTotp } from '../../lib/tokens/totp'
import { createV1Token } from '../../lib/tokens/v1'
import { SECRET } from '../helpers/fixtures'
import { startRendezvous } from '../helpers/rendezvous'

/*
 * A 6-digit TOTP code can be guessed by whoever has enough addresses, each
 * under its own per-pair and per-address budget. Failed TOTP codes are
 * therefore also counted per ID, from every address: past the limit TOTP
 * codes for that ID are cooled off, even good ones, while v1 tokens, which
 * cannot be guessed, still park.
 */

const ID = '0a1b2c3d-0000-4000-8000-00000000a001'

/** Sends one CONNECT from `localAddress` and resolves with all the relay answered before it closed or parked. */
async function connectFrom (port: number, localAddress: string, token: string): Promise<{ head: string, socket: Socket }> {
  const socket = connect({ port, host: '127.0.0.1', localAddress })
  socket.write(`CONNECT uuid:${ID}?response=${token} HTTP/1.1\r\nHost: relay\r\n\r\n`)
  let text = ''
  return await new Promise((resolve, reject) => {
    socket.on('error', reject)
    socket.on('data', chunk => {
      text += chunk.toString('latin1')
      if (text.startsWith('HTTP/1.1 200 ') && text.includes('\r\n\r\n')) resolve({ head: text, socket })
    })
    socket.once('close', () => resolve({ head: text, socket }))
  })
}

// A code that matches none of the steps the relay accepts now.
function wrongCode (): string {
  const good = new Set([-30_000, 0, 30_000].map(d => createTotp(SECRET, Date.now() + d)))
  let code = 0
  while (good.has(String(code).padStart(6, '0'))) code++
  return String(code).padStart(6, '0')
}

t.test('thirty wrong TOTP codes from thirty addresses cool off TOTP for the ID; a v1 token still parks', async t => {
  const lines: Array<{ level: number, msg: string, address?: string, limits?: string[], coolOff?: number }> = []
  const stream = new Writable({ write (chunk, _e, cb) { for (const l of String(chunk).split('\n')) if (l !== '') lines.push(JSON.parse(l)); cb() } })
  const relay = await startRendezvous({ ids: [ID], fastify: { logger: { level: 'info', stream } } })
  t.teardown(relay.close)
  for (let i = 2; i <= 31; i++) {
    const { head } = await connectFrom(relay.port, `127.0.0.${i}`, wrongCode())
    t.match(head, /^HTTP\/1\.1 401 /, `guess from 127.0.0.${i}: 401`)
  }
  const good = await connectFrom(relay.port, '127.0.0.32', createTotp(SECRET))
  t.match(good.head, /^HTTP\/1\.1 429 /, 'a good TOTP code from a fresh address: 429')
  const retryAfter = Number(/\r\nRetry-After: (\d+)\r\n/i.exec(good.head)?.[1])
  t.ok(retryAfter > 50 && retryAfter <= 60, `Retry-After is the cool-off (${retryAfter})`)
  const v1 = await connectFrom(relay.port, '127.0.0.32', createV1Token(ID, SECRET))
  t.match(v1.head, /^HTTP\/1\.1 200 OK\r\n\r\n$/, 'a v1 token from the same address parks')
  v1.socket.destroy()
  const warned = lines.filter(l => l.level === 40)
  t.same(warned.map(l => [l.msg, l.address, l.coolOff]), [['too many wrong TOTP codes for this ID from all addresses; its TOTP codes are cooled off', '127.0.0.31', 60]],
    'one warning, which says the ID is cooled off, not the address that sent the 30th code')
})

t.test('ten wrong codes from one address trip only that pair: the same ID still parks a good TOTP code from elsewhere', async t => {
  const relay = await startRendezvous({ ids: [ID] })
  t.teardown(relay.close)
  for (let i = 0; i < 10; i++) t.match((await connectFrom(relay.port, '127.0.0.2', wrongCode())).head, /^HTTP\/1\.1 401 /)
  t.match((await connectFrom(relay.port, '127.0.0.2', createTotp(SECRET))).head, /^HTTP\/1\.1 429 /, 'the pair is cooled off')
  const good = await connectFrom(relay.port, '127.0.0.3', createTotp(SECRET))
  t.match(good.head, /^HTTP\/1\.1 200 OK\r\n\r\n$/, 'another address is not')
  good.socket.destroy()
})

t.test('with perIdTotp at 0, only the per-pair and per-address counters stand', async t => {
  const relay = await startRendezvous({ ids: [ID], plugin: { authFailures: { perIdTotp: 0 } } })
  t.teardown(relay.close)
  for (let i = 2; i <= 11; i++) t.match((await connectFrom(relay.port, `127.0.0.${i}`, wrongCode())).head, /^HTTP\/1\.1 401 /)
  const good = await connectFrom(relay.port, '127.0.0.12', createTotp(SECRET))
  t.match(good.head, /^HTTP\/1\.1 200 OK\r\n\r\n$/)
  good.socket.destroy()
})

t.test('while the ID is cooled off, an address that had a TOTP code accepted for it still parks; a fresh one does not', async t => {
  const relay = await startRendezvous({ ids: [ID] })
  t.teardown(relay.close)
  const first = await connectFrom(relay.port, '127.0.0.40', createTotp(SECRET, Date.now(), 6))
  t.match(first.head, /^HTTP\/1\.1 200 OK\r\n\r\n$/, 'the hidden server parks before the guessing')
  first.socket.destroy()
  for (let i = 2; i <= 31; i++) t.match((await connectFrom(relay.port, `127.0.0.${i}`, wrongCode())).head, /^HTTP\/1\.1 401 /)
  t.match((await connectFrom(relay.port, '127.0.0.41', createTotp(SECRET, Date.now(), 7))).head, /^HTTP\/1\.1 429 /, 'a good code from an address never accepted: 429')
  const again = await connectFrom(relay.port, '127.0.0.40', createTotp(SECRET, Date.now(), 8))
  t.match(again.head, /^HTTP\/1\.1 200 OK\r\n\r\n$/, 'the known hidden server parks again')
  again.socket.destroy()
})
