import t from 'tap'
import { deepStrictEqual } from 'node:assert/strict'
import fc from 'fast-check'
import { createHash } from 'node:crypto'
import http from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import { serializeHead } from '../../lib/http/head'
import { aToken, params } from '../helpers/properties'

/*
 * The head serialiser against Node's own parser. For a generated request:
 * 1. Node parses the original to the generated method, target and headers;
 * 2. the serialised head plus the original bytes after the head parse again
 *    to the same method, target and headers (minus Authorization), the same
 *    body, and the same next pipelined request: the framing is unchanged.
 */

interface Seen { method: string, url: string, rawHeaders: string[], body: string, trailers: string[] }

const seen = new Map<number, Seen[]>()
const server = http.createServer((req, res) => {
  const hash = createHash('sha256')
  req.on('data', (c: Buffer) => hash.update(c))
  req.on('end', () => {
    const list = seen.get(req.socket.remotePort ?? 0) ?? []
    list.push({ method: req.method ?? '', url: req.url ?? '', rawHeaders: req.rawHeaders, body: hash.digest('hex'), trailers: req.rawTrailers })
    seen.set(req.socket.remotePort ?? 0, list)
    res.end('ok')
  })
})

/** Sends `bytes` on a new connection, half-closes, and returns what Node parsed from it. */
async function parse (bytes: Buffer): Promise<Seen[]> {
  const port = (server.address() as AddressInfo).port
  return await new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1', allowHalfOpen: true }, () => {
      const local = s.localPort ?? 0
      s.on('close', () => {
        const list = seen.get(local) ?? []
        seen.delete(local)
        resolve(list)
      })
      s.end(bytes)
    })
    s.on('error', reject)
    s.resume()
  })
}

const METHOD = fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD', 'PROPFIND')
const URL_CHAR = fc.integer({ min: 0x21, max: 0x7e }).map(c => String.fromCharCode(c))
const TARGET = fc.string({ unit: URL_CHAR, maxLength: 60 }).map(s => '/' + s)
const VCHAR = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 0x21, max: 0x7e }) },
  { weight: 1, arbitrary: fc.integer({ min: 0x80, max: 0xff }) }
).map(c => String.fromCharCode(c))
const INNER = fc.oneof({ weight: 6, arbitrary: VCHAR }, { weight: 1, arbitrary: fc.constantFrom(' ', '\t') })
const OWS = fc.constantFrom('', ' ', '  ', '\t', ' \t')
// Header values as sent (with optional whitespace round them) and as Node keeps them (without).
const VALUE = fc.tuple(OWS, fc.option(fc.tuple(VCHAR, fc.string({ unit: INNER, maxLength: 40 }), VCHAR), { nil: undefined }), OWS)
  .map(([a, core, b]) => {
    const kept = core === undefined ? '' : core[0] + (core[1] + core[2]).replace(/^[ \t]+|[ \t]+$/g, '')
    // A value of nothing but whitespace has nothing kept.
    return { sent: kept === '' ? a : a + kept + b, kept }
  })
const RESERVED = /^(host|content-length|transfer-encoding|connection|upgrade|expect|authorization|te|keep-alive|trailer|proxy-connection)$/i
const HEADER = fc.tuple(aToken(20).filter(n => !RESERVED.test(n)), VALUE)

const CHUNK = fc.tuple(fc.string({ unit: 'binary-ascii', minLength: 1, maxLength: 30 }), fc.boolean())
  .map(([data, ext]) => `${Buffer.byteLength(data, 'latin1').toString(16)}${ext ? ';x=1' : ''}\r\n${data}\r\n`)
const FRAMING = fc.oneof(
  fc.constant({ headers: [] as string[], body: '' }),
  fc.string({ unit: 'binary-ascii', maxLength: 200 }).map(b => ({ headers: ['Content-Length', String(b.length)], body: b })),
  fc.tuple(fc.array(CHUNK, { maxLength: 4 }), fc.boolean()).map(([chunks, trailer]) => ({
    headers: ['Transfer-Encoding', 'chunked'],
    body: chunks.join('') + '0\r\n' + (trailer ? 'X-Trailer: t\r\n' : '') + '\r\n'
  }))
)
const NEXT = 'GET /next HTTP/1.1\r\nHost: next\r\n\r\n'

const REQUEST = fc.record({
  method: METHOD,
  url: TARGET,
  headers: fc.array(HEADER, { maxLength: 12 }),
  auth: fc.option(fc.constantFrom('Digest username="hub-1"', 'Basic aHViLTE6eA==', 'Bearer app'), { nil: undefined }),
  framing: FRAMING
})

t.before(async () => { await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve)) })
t.teardown(() => { server.close() })

t.test('a serialised head parses back to the same request, framed the same way', async t => {
  await fc.assert(fc.asyncProperty(REQUEST, async r => {
    const raw: string[] = ['Host', 'relay.test']
    for (const [name, value] of r.headers) raw.push(name, value.sent)
    if (r.auth !== undefined) raw.push('Authorization', r.auth)
    raw.push(...r.framing.headers)
    let head = `${r.method} ${r.url} HTTP/1.1\r\n`
    for (let i = 0; i < raw.length; i += 2) head += `${raw[i]}:${raw[i + 1]}\r\n`
    const after = Buffer.from(r.framing.body + NEXT, 'latin1')
    const original = await parse(Buffer.concat([Buffer.from(head + '\r\n', 'latin1'), after]))
    const expected: string[] = ['Host', 'relay.test']
    for (const [name, value] of r.headers) expected.push(name, value.kept)
    const withAuth = r.auth === undefined ? expected : [...expected, 'Authorization', r.auth]
    const first = original[0]
    deepStrictEqual([original.length, first.method, first.url], [2, r.method, r.url], 'Node parses the original as generated')
    deepStrictEqual(first.rawHeaders, [...withAuth, ...r.framing.headers])
    const forwarded = await parse(Buffer.concat([serializeHead({ ...first, httpVersion: '1.1' }), after]))
    const framing = (list: Seen[]): unknown => list.map(s => [s.method, s.url, s.body, s.trailers])
    deepStrictEqual(framing(forwarded), framing(original), 'same framing')
    deepStrictEqual(forwarded[0].rawHeaders, [...expected, ...r.framing.headers], 'same headers minus Authorization')
  }), params())
  t.pass(`${params().numRuns ?? 0} generated requests`)
})
