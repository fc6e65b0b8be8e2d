import t from 'tap'
import { startRendezvous } from '../helpers/rendezvous'
import { TOKEN } from './helpers'
import { parse, raw } from './raw'

/*
 * A body is optional on every admin route, and DELETE and disconnect take
 * none; clients that always send `Content-Type: application/json` send it
 * with an empty body too, which Fastify's JSON parser refused with 400
 * ("Body cannot be empty when content-type is set to 'application/json'").
 * An empty JSON body is now no body; JSON that is not an object is still refused.
 */

const call = (method: string, path: string, body: string, type = 'application/json'): string =>
  `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: ${type}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`

t.test('an empty body with Content-Type: application/json is no body, on every route', async t => {
  const relay = await startRendezvous({ ids: ['hub-1', 'hub-2'], plugin: { admin: { port: 0, token: TOKEN } } })
  t.teardown(relay.close)
  const port = relay.app.rendezvous.adminAddress()!.port
  const json = async (request: string): Promise<{ status: number, body: any }> => {
    const answer = parse(await raw(port, request))
    return { status: answer.status, body: JSON.parse(answer.body) }
  }

  const disconnected = await json(call('POST', '/api/ids/hub-1/disconnect', ''))
  t.same(disconnected, { status: 200, body: { id: 'hub-1', parked: 0, spliced: 0 } }, 'disconnect')
  const rotated = await json(call('POST', '/api/ids/hub-1/rotate', ''))
  t.equal(rotated.status, 200, 'rotate, with the default overlap')
  t.match(rotated.body.previousSecretUntil, /^\d{4}-/)
  const removed = await json(call('DELETE', '/api/ids/hub-2', ''))
  t.same(removed, { status: 200, body: { id: 'hub-2', removed: true } }, 'remove')
  t.notOk(relay.registry.get('hub-2'))
  const added = await json(call('POST', '/api/ids', '', 'application/json; charset=utf-8'))
  t.equal(added.status, 201, 'add, with a fresh ID')
  t.match(added.body.id, /^[0-9a-f-]{36}$/)
  const listed = await json(call('GET', '/api/ids', ''))
  t.equal(listed.status, 200, 'list')

  // Still refused: a body that is there and is not a JSON object.
  for (const body of [' ', 'null', '[]', '{']) {
    const refused = await json(call('POST', '/api/ids/hub-1/disconnect', body))
    t.equal(refused.status, 400, JSON.stringify(body))
    t.equal(refused.body.error, 'bad_request')
  }
  t.equal((await json(call('DELETE', '/api/ids/hub-1', 'x', 'text/plain'))).status, 415, 'another content type is still refused when there is a body')
  t.equal((await json(call('POST', '/api/ids/hub-1/rotate', '{"__proto__":{"x":1}}'))).status, 400, 'Fastify\'s guard against prototype poisoning still holds')
})
