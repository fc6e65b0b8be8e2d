import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { refusalBytes } from '../../lib/http/refusals'
import { startRendezvous, type TestRendezvous } from '../helpers/rendezvous'
import { statusOf } from '../helpers/wire'

/*
 * An app that embeds the plugin may add headers to every answer from its own
 * hooks: @fastify/helmet sets them on Node's response in an onRequest hook,
 * others in onSend. The unknown-ID 404, and the 429 and 503 that the plugin
 * writes from its own hook, used to carry them, while the same refusals
 * written on a socket the relay took (a known ID) did not: during the
 * unknown-ID cool-off one request told a known ID from an unknown one.
 * Every one of them must go out as refusalBytes writes it, whichever path.
 */

const basic = (user: string): string => `Authorization: Basic ${Buffer.from(`${user}:x`).toString('base64')}\r\n`

/** What helmet does (headers on Node's response, before the plugin's hook), and the other ways an app adds one. */
function addAppHeaders (app: FastifyInstance): void {
  app.addHook('onRequest', (_request, reply, done) => {
    reply.raw.setHeader('X-Frame-Options', 'SAMEORIGIN')
    reply.raw.setHeader('Strict-Transport-Security', 'max-age=31536000')
    reply.header('x-app-reply', 'yes')
    done()
  })
  app.addHook('onSend', async (_request, reply, payload) => {
    reply.header('x-app-send', 'yes')
    return payload
  })
  // Answers after a while, so that a request pipelined behind it waits for its answer.
  app.get('/slow', async () => {
    await new Promise(resolve => setTimeout(resolve, 200))
    return 'slow\n'
  })
}

async function exchange (relay: TestRendezvous, text: string): Promise<string> {
  const wire = await relay.open()
  wire.write(text)
  await wire.untilClosed()
  return wire.text
}

const request = (user: string, method = 'GET'): string => `${method} /x HTTP/1.1\r\nHost: h\r\n${basic(user)}\r\n`

/** The header field lines of an answer, in order. */
function fieldsOf (text: string): string[] {
  return text.slice(0, text.indexOf('\r\n\r\n')).split('\r\n').slice(1).map(line => line.slice(0, line.indexOf(':')))
}

function retryAfterOf (text: string): number {
  return Number(/\r\nRetry-After: (\d+)\r\n/.exec(text)?.[1])
}

for (const tls of [false, true]) {
  const name = tls ? 'https' : 'http'

  t.test(`${name}: with app hooks that add headers, an unknown ID's 404 and 429 are byte for byte a known ID's`, async t => {
    const relay = await startRendezvous({ tls, before: addAppHeaders, plugin: { unknownIdFailures: { perAddress: 3, window: 60_000, coolOff: 60_000 } } })
    t.teardown(relay.close)

    const routed = await exchange(relay, 'GET /slow HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n')
    t.match(routed, /\r\nx-frame-options: SAMEORIGIN\r\n[^]*\r\nx-app-send: yes\r\n/i, 'the app\'s own routes carry its headers')

    const notFound = refusalBytes({ status: 404, message: 'no hidden server has this ID' })
    t.equal(await exchange(relay, request('nobody-1')), notFound.toString('latin1'), 'the 404: no field of the app\'s')
    t.equal(await exchange(relay, request('nobody-2', 'HEAD')), refusalBytes({ status: 404, message: 'no hidden server has this ID', headOnly: true }).toString('latin1'), 'the 404 to HEAD: the same head, no body')
    // Another refusal of the mobile side, written on the socket the relay took: a Digest credential without a user name.
    const malformed = await exchange(relay, 'GET /x HTTP/1.1\r\nHost: h\r\nAuthorization: Digest realm="r"\r\n\r\n')
    t.equal(statusOf(malformed), 400, 'a malformed credential gets the relay\'s 400')
    t.same(fieldsOf(notFound.toString('latin1')), fieldsOf(malformed), 'the 404 has the fields of the relay\'s other refusals, in their order')

    t.equal(statusOf(await exchange(relay, request('nobody-3'))), 404, 'the probe that reaches the limit still gets its 404')
    const unknown = await exchange(relay, request('nobody-4'))
    const known = await exchange(relay, request('hub-1'))
    t.equal(statusOf(unknown), 429, 'past the limit, an unknown ID gets 429')
    t.equal(unknown, refusalBytes({ status: 429, message: 'too many requests for unknown IDs', retryAfter: retryAfterOf(unknown) }).toString('latin1'), 'the unknown ID\'s 429: no field of the app\'s')
    t.equal(unknown.replace(/Retry-After: \d+/, ''), known.replace(/Retry-After: \d+/, ''), 'a known ID\'s 429 is the same bytes')
    t.ok(Math.abs(retryAfterOf(unknown) - retryAfterOf(known)) <= 1, 'and says the same wait')

    const unknownHead = await exchange(relay, request('nobody-5', 'HEAD'))
    const knownHead = await exchange(relay, request('hub-1', 'HEAD'))
    t.match(unknownHead, /^HTTP\/1\.1 429 [^]*\r\n\r\n$/, 'the 429 to HEAD has no body')
    t.equal(unknownHead.replace(/Retry-After: \d+/, ''), knownHead.replace(/Retry-After: \d+/, ''), 'and is a known ID\'s')
  })

  t.test(`${name}: a 404 pipelined behind an app's answer still in the making goes out after it`, async t => {
    const relay = await startRendezvous({ tls, before: addAppHeaders })
    t.teardown(relay.close)
    const wire = await relay.open()
    wire.write(`GET /slow HTTP/1.1\r\nHost: h\r\n\r\n${request('nobody')}`)
    await wire.untilClosed()
    const at = wire.text.indexOf('HTTP/1.1 404 ')
    t.equal(statusOf(wire.text), 200, 'the first request\'s answer first')
    t.match(wire.text.slice(0, at), /\r\n\r\nslow\n$/, 'whole')
    t.equal(wire.text.slice(at), refusalBytes({ status: 404, message: 'no hidden server has this ID' }).toString('latin1'), 'then the 404, as ever')
  })
}

t.test('while the relay closes, the 503s of the app\'s hook path and of the relay\'s sockets are the same bytes', async t => {
  const relay = await startRendezvous({ before: addAppHeaders, fastify: { return503OnClosing: false }, plugin: { closeGracePeriod: 10_000, retryAfter: 7 } })
  const state: { closed?: Promise<void> } = {}
  t.teardown(async () => { await (state.closed ?? relay.close()) })
  // A spliced pair holds the close open while the requests below are answered.
  const hidden = await relay.park('hub-1')
  const client = await relay.open()
  client.write(request('hub-1'))
  await hidden.untilText('\r\n\r\n')
  hidden.write('HTTP/1.1 204 No Content\r\n\r\n')
  await client.untilText('204')
  // Opened before the close and silent until after it, so that its sweep of idle connections leaves them.
  const asks = [request('hub-1'), request('nobody'), 'GET /x HTTP/1.1\r\nHost: h\r\n\r\n']
  const conns = await Promise.all(asks.map(async () => await relay.open()))
  for (const c of conns) t.teardown(() => c.destroy())
  state.closed = relay.close()
  await new Promise(resolve => setTimeout(resolve, 100))
  const answers: string[] = []
  for (const [i, ask] of asks.entries()) {
    conns[i].write(ask)
    await conns[i].untilClosed()
    answers.push(conns[i].text)
  }
  const expected = refusalBytes({ status: 503, message: 'shutting down', retryAfter: 7 }).toString('latin1')
  t.same(answers, [expected, expected, expected], 'a known ID, an unknown one and no credential: one answer')
  hidden.destroy()
  client.destroy()
  await state.closed
})
