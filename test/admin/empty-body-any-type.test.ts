import t from 'tap'
import { startRendezvous } from '../helpers/rendezvous'
import { TOKEN } from './helpers'
import { parse, raw } from './raw'

/*
 * An empty body is no body whatever its Content-Type: `curl -X POST -d ''`
 * sends application/x-www-form-urlencoded with Content-Length: 0, and was
 * refused with 415. A body that is there with a type other than JSON still is.
 */

const head = (method: string, path: string, type: string | undefined, body: string, chunked = false): string =>
  `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}\r\n` +
  (type === undefined ? '' : `Content-Type: ${type}\r\n`) +
  (chunked ? 'Transfer-Encoding: chunked\r\n' : `Content-Length: ${Buffer.byteLength(body)}\r\n`) +
  `Connection: close\r\n\r\n${chunked ? (body === '' ? '0\r\n\r\n' : `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`) : body}`

const TYPES = ['text/plain', 'application/x-www-form-urlencoded', 'application/octet-stream', 'multipart/form-data; boundary=x', 'text/plain; charset=utf-8']

t.test('an empty body with any Content-Type is no body, on every route', async t => {
  const relay = await startRendezvous({ ids: ['hub-1', 'hub-2', ...Array.from({ length: 10 }, (_, i) => `rot-${i}`)], plugin: { admin: { port: 0, token: TOKEN } } })
  t.teardown(relay.close)
  const port = relay.app.rendezvous.adminAddress()!.port
  const send = async (request: string): Promise<{ status: number, body: any }> => {
    const answer = parse(await raw(port, request))
    return { status: answer.status, body: JSON.parse(answer.body) }
  }
  let rotations = 0
  for (const type of TYPES) {
    for (const chunked of [false, true]) {
      const how = `${type}${chunked ? ', chunked' : ''}`
      t.same(await send(head('POST', '/api/ids/hub-1/disconnect', type, '', chunked)), { status: 200, body: { id: 'hub-1', parked: 0, spliced: 0 } }, `disconnect, ${how}`)
      t.equal((await send(head('POST', `/api/ids/rot-${rotations++}/rotate`, type, '', chunked))).status, 200, `rotate, ${how}`)
      t.equal((await send(head('POST', '/api/ids', type, '', chunked))).status, 201, `add, ${how}`)
      t.equal((await send(head('GET', '/api/ids', type, '', chunked))).status, 200, `list, ${how}`)
    }
  }
  t.same(await send(head('DELETE', '/api/ids/hub-2', 'text/plain', '')), { status: 200, body: { id: 'hub-2', removed: true } }, 'remove, text/plain')

  // A body that is there and is not JSON: still 415, and nothing changed.
  for (const type of [...TYPES, undefined]) {
    for (const chunked of [false, true]) {
      const refused = await send(head('POST', '/api/ids', type, 'id=hub-3', chunked))
      t.equal(refused.status, 415, `a body of ${type ?? 'no type'}${chunked ? ', chunked' : ''}`)
      t.equal(refused.body.error, 'unsupported_media_type')
    }
  }
  t.notOk(relay.registry.get('hub-3'))
})
