import { Writable } from 'node:stream'
import t from 'tap'
import { MemoryRegistry, type AddIdentity, type IdentityRecord } from '../../lib/index'
import { RegistryLockedError } from '../../lib/errors'
import { startRendezvous as startRelay } from '../helpers/rendezvous'
import { adminUrl, TOKEN } from './helpers'

// Every refusal of the admin API has one shape, {"error","message"}, with
// `error` from a short fixed vocabulary (docs/operations.md), whoever refuses:
// the routes, the schema, Fastify's body parser or its router. A refusal is a
// client's mistake: one log line without a stack. A server error keeps it.

const ADMIN = { port: 0, token: TOKEN }

interface Line { level: number, msg: string, err?: { stack?: string }, [key: string]: unknown }

function capture (): { stream: Writable, lines: () => Line[] } {
  let raw = ''
  const stream = new Writable({ write (chunk, _e, cb) { raw += String(chunk); cb() } })
  return { stream, lines: () => raw.trim().split('\n').filter(l => l !== '').map(l => JSON.parse(l) as Line) }
}

async function call (url: string, method: string, body?: string, type = 'application/json', token = TOKEN): Promise<{ status: number, type: string | null, body: any }> {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` }
  if (body !== undefined) headers['content-type'] = type
  const res = await fetch(url, { method, headers, body })
  return { status: res.status, type: res.headers.get('content-type'), body: await res.json().catch(() => undefined) }
}

t.test('every refusal is {"error","message"} with an error from the vocabulary, logged once at info without a stack', async t => {
  const log = capture()
  const relay = await startRelay({ fastify: { logger: { level: 'debug', stream: log.stream } }, plugin: { admin: ADMIN } })
  t.teardown(relay.close)
  const cases: Array<[string, string, string | undefined, string | undefined, number, string]> = [
    ['POST', '/api/ids', '{"id":"a b"}', undefined, 400, 'bad_request'],
    ['POST', '/api/ids', '{"secret":"abc"}', undefined, 400, 'bad_request'],
    ['POST', '/api/ids', '{"id":"hub-1"}', undefined, 409, 'conflict'],
    ['POST', '/api/ids', '{"id":', undefined, 400, 'bad_request'],
    ['POST', '/api/ids', ' ', undefined, 400, 'bad_request'],
    ['POST', '/api/ids', '{"id":12345}', undefined, 400, 'bad_request'],
    ['POST', '/api/ids', 'id=x', 'text/plain', 415, 'unsupported_media_type'],
    ['POST', '/api/ids', JSON.stringify({ id: 'x'.repeat(20_000) }), undefined, 413, 'body_too_large'],
    ['POST', '/api/ids/hub-1/rotate', '{"overlapSeconds":-1}', undefined, 400, 'bad_request'],
    ['DELETE', '/api/ids/no-such-id', undefined, undefined, 404, 'not_found'],
    ['DELETE', '/api/ids/a%20b', undefined, undefined, 400, 'bad_request'],
    ['GET', '/api/no-such-route', undefined, undefined, 404, 'not_found'],
    ['GET', '/api/ids', undefined, undefined, 401, 'unauthorized']
  ]
  for (const [method, path, body, type, status, error] of cases) {
    const what = `${method} ${path} ${(body ?? '').slice(0, 30)}`
    const res = await call(adminUrl(relay, path), method, body, type, status === 401 ? `${TOKEN}x` : TOKEN)
    t.equal(res.status, status, what)
    t.match(res.type, /^application\/json/, `${what}: JSON`)
    t.same(Object.keys(res.body ?? {}).sort(), ['error', 'message'], `${what}: only error and message`)
    t.equal(res.body?.error, error, `${what}: ${error}`)
    t.match(res.body?.message, /^\S.{3,}/, `${what}: a message`)
  }
  t.same(relay.registry.get('hub-1')?.id, 'hub-1', 'nothing changed')
  await relay.close()

  const lines = log.lines()
  t.same(lines.filter(l => l.err !== undefined || JSON.stringify(l).includes('\\n    at ')), [], 'no error object, no stack')
  const refused = lines.filter(l => l.msg === 'admin request refused')
  t.equal(refused.length, cases.length, 'one line for each refusal')
  t.same(refused.map(l => [l.level, l.status, l.error]), cases.map(c => [30, c[4], c[5]]), 'at info, with the status and the error')
})

t.test('a server error is answered in the same shape and logged at error with its stack; a store that cannot answer at warn', async t => {
  const log = capture()
  class Failing extends MemoryRegistry {
    override async add (input?: AddIdentity): Promise<IdentityRecord> {
      if (input?.id === 'hub-1') return await super.add(input)
      throw new Error('disk on fire')
    }

    override async rotate (id: string): Promise<never> { throw new RegistryLockedError(id, 'by another writer after 5000 ms') }
  }
  const registry = new Failing()
  await registry.add({ id: 'hub-1' })
  const relay = await startRelay({ ids: [], fastify: { logger: { level: 'info', stream: log.stream } }, plugin: { admin: ADMIN, registry } })
  t.teardown(relay.close)
  const failed = await call(adminUrl(relay, '/api/ids'), 'POST', '{}')
  t.equal(failed.status, 500)
  t.same(failed.body, { error: 'internal_error', message: 'disk on fire' })
  const locked = await call(adminUrl(relay, '/api/ids/hub-1/rotate'), 'POST', '{}')
  t.equal(locked.status, 503)
  t.equal(locked.body?.error, 'unavailable')
  t.match(locked.body?.message, /still held by another writer/)
  await relay.close()
  const errors = log.lines().filter(l => l.level === 50)
  t.equal(errors.length, 1, 'one error line, for the 500')
  t.match(errors[0]?.err?.stack, /disk on fire\n\s+at /, 'with its stack')
  // A store that cannot answer is no bug of ours: a warn line, with what it said, without a stack.
  const warnings = log.lines().filter(l => l.level === 40 && String(l.msg).startsWith('admin request failed'))
  t.equal(warnings.length, 1)
  t.match(warnings[0], { status: 503, error: 'unavailable', message: /still held by another writer/ })
  t.equal(warnings[0]?.err, undefined)
})
