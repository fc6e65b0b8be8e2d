import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import http from 'node:http'
import https from 'node:https'
import type net from 'node:net'
import { Readable } from 'node:stream'
import { Agent, fetch as undiciFetch, Request as UndiciRequest } from 'undici'
import { createRendezvousFetch, digestAuthorization, parseDigestChallenge, rendezvousFetch } from '../../lib/client/digest-fetch'
import { tlsCert, tlsKey } from '../helpers/tls'
import type { TapTest } from '../agent/helpers'

const ID = 'hub-42'
const md5 = (s: string): string => createHash('md5').update(s).digest('hex')

interface Seen { method: string, url: string, authorization?: string, body: string, verdict: string, kept?: string }

// Plays the rendezvous' mobile side, and checks each Digest answer the way RFC 7616 defines it.
async function rendezvousLike (t: TapTest, opts: { tls?: boolean, challenge?: string, refuseAll?: boolean } = {}): Promise<{ url: string, seen: Seen[] }> {
  const seen: Seen[] = []
  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    let body = ''
    req.setEncoding('latin1')
    req.on('data', (c: string) => { body += c })
    req.on('end', () => {
      const authorization = req.headers.authorization
      const verdict = authorization === undefined ? 'none' : check(authorization, req.method!, req.url!)
      seen.push({ method: req.method!, url: req.url!, authorization, body, verdict, kept: req.headers['x-kept'] as string | undefined })
      if (verdict !== 'ok' || opts.refuseAll === true) {
        const nonce = randomBytes(12).toString('hex')
        res.writeHead(401, { 'www-authenticate': opts.challenge ?? `Digest realm="rendezvous", qop="auth, auth-int", nonce="${nonce}", opaque="5ccc069c403ebaf9f0171e9517f40e41"` })
        res.end('challenge body')
        return
      }
      res.end(`${req.method} ${req.url} ${body}`)
    })
  }
  const server = opts.tls === true ? https.createServer({ key: tlsKey, cert: tlsCert }, handler) : http.createServer(handler)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  const { port } = server.address() as net.AddressInfo
  return { url: `${opts.tls === true ? 'https' : 'http'}://127.0.0.1:${port}`, seen }
}

function check (header: string, method: string, uri: string): string {
  const m = /^Digest (.*)$/.exec(header)
  if (m === null) return 'not digest'
  const p: Record<string, string> = {}
  for (const [, k, q, v] of m[1]!.matchAll(/(\w+)=(?:"([^"]*)"|([^,\s]*))/g)) p[k!] = q ?? v!
  if (p.username !== ID) return `username ${p.username}`
  if (p.uri !== uri) return `uri ${p.uri}`
  if (p.qop !== 'auth' || !/^[0-9a-f]{8}$/.test(p.nc ?? '') || (p.cnonce ?? '').length < 8) return 'qop/nc/cnonce'
  const ha1 = md5(`${ID}:${p.realm}:`)
  const expected = md5(`${ha1}:${p.nonce}:${p.nc}:${p.cnonce}:auth:${md5(`${method}:${uri}`)}`)
  return p.response === expected ? 'ok' : 'bad response'
}

t.test('global fetch: answers the challenge once, then reuses it', async (t) => {
  const srv = await rendezvousLike(t)
  const rfetch = createRendezvousFetch({ id: ID })
  const res = await rfetch(`${srv.url}/status?x=1`)
  t.equal(res.status, 200)
  t.equal(await res.text(), 'GET /status?x=1 ')
  t.same(srv.seen.map((s) => s.verdict), ['none', 'ok'])
  t.match(srv.seen[1]!.authorization, /^Digest username="hub-42", realm="rendezvous", nonce="[0-9a-f]+", uri="\/status\?x=1", response="[0-9a-f]{32}", qop=auth, nc=00000001, cnonce="[0-9a-f]+", opaque="5ccc069c403ebaf9f0171e9517f40e41"$/)

  const again = await rfetch(`${srv.url}/second`, { method: 'POST', body: 'payload' })
  t.equal(await again.text(), 'POST /second payload')
  t.equal(srv.seen.length, 3, 'no second challenge round trip')
  t.match(srv.seen[2]!.authorization, /nc=00000002/)
})

t.test('a body is sent again on the retry', async (t) => {
  const srv = await rendezvousLike(t)
  const res = await rendezvousFetch(`${srv.url}/upload`, { id: ID, method: 'PUT', body: new TextEncoder().encode('bytes!') })
  t.equal(await res.text(), 'PUT /upload bytes!')
  t.same(srv.seen.map((s) => [s.verdict, s.body]), [['none', 'bytes!'], ['ok', 'bytes!']])
})

t.test('preemptive: the first request already carries the credential', async (t) => {
  const srv = await rendezvousLike(t)
  const res = await createRendezvousFetch({ id: ID, preemptive: true })(`${srv.url}/now`)
  t.equal(res.status, 200)
  t.same(srv.seen.map((s) => s.verdict), ['ok'])
})

t.test('a refused credential is not retried forever, and other 401s are left alone', async (t) => {
  const refusing = await rendezvousLike(t, { refuseAll: true })
  const res = await createRendezvousFetch({ id: ID })(`${refusing.url}/x`)
  t.equal(res.status, 401)
  t.equal(refusing.seen.length, 2, 'one retry only')

  const basic = await rendezvousLike(t, { challenge: 'Basic realm="other"' })
  t.equal((await createRendezvousFetch({ id: ID })(`${basic.url}/x`)).status, 401)
  t.equal(basic.seen.length, 1)

  const streamed = await rendezvousLike(t)
  const body = Readable.toWeb(Readable.from([Buffer.from('once')])) as ReadableStream
  const r = await createRendezvousFetch({ id: ID })(`${streamed.url}/x`, { method: 'POST', body, duplex: 'half' } as RequestInit)
  t.equal(r.status, 401, 'a stream cannot be sent twice, so the 401 is returned')
  t.equal(streamed.seen.length, 1)

  const own = await rendezvousLike(t)
  t.equal((await createRendezvousFetch({ id: ID })(`${own.url}/x`, { headers: { Authorization: 'Bearer mine' } })).status, 401)
  t.same(own.seen.map((s) => s.authorization), ['Bearer mine'], 'a caller\'s own Authorization is left alone')
})

t.test('undici fetch with a dispatcher trusting a private CA, and a Request input', async (t) => {
  const srv = await rendezvousLike(t, { tls: true })
  const dispatcher = new Agent({ connect: { ca: tlsCert } })
  t.teardown(() => dispatcher.close())
  const rfetch = createRendezvousFetch({ id: ID, fetch: undiciFetch })
  const res = await rfetch(`${srv.url}/tls`, { dispatcher })
  t.equal(await res.text(), 'GET /tls ')
  const req = new UndiciRequest(`${srv.url}/req`, { method: 'POST', body: 'from a Request', headers: { 'x-kept': 'yes' } })
  const fresh = createRendezvousFetch({ id: ID, fetch: undiciFetch })
  const res2 = await fresh(req, { dispatcher })
  t.equal(await res2.text(), 'POST /req from a Request')
  t.same(srv.seen.map((s) => s.verdict), ['none', 'ok', 'none', 'ok'])
  t.same(srv.seen.slice(2).map((s) => s.kept), ['yes', 'yes'], 'the Request\'s own headers survive the added Authorization')
})

t.test('global fetch with a global Request input', async (t) => {
  const srv = await rendezvousLike(t)
  const req = new Request(`${srv.url}/global`, { method: 'POST', body: 'abc', headers: { 'x-kept': 'yes' } })
  const res = await createRendezvousFetch({ id: ID })(req)
  t.equal(await res.text(), 'POST /global abc')
  t.same(srv.seen.map((s) => [s.verdict, s.kept, s.body]), [['none', 'yes', 'abc'], ['ok', 'yes', 'abc']])
})

t.test('challenge parsing and the digest itself', async (t) => {
  const c = parseDigestChallenge('Basic realm="x", Digest realm="rend\\"ezvous", qop="auth, auth-int", nonce="abc", opaque="def", algorithm=MD5')
  t.same(c, { realm: 'rend"ezvous', nonce: 'abc', opaque: 'def', qop: 'auth, auth-int', algorithm: 'MD5', stale: undefined })
  t.equal(parseDigestChallenge('Digest qop="auth"'), undefined, 'no nonce, no challenge')
  t.equal(parseDigestChallenge(null), undefined)

  const ha1 = md5('id:realm:')
  const plain = digestAuthorization('id', { realm: 'realm', nonce: 'n' }, { method: 'GET', uri: '/a' })
  t.equal(plain, `Digest username="id", realm="realm", nonce="n", uri="/a", response="${md5(`${ha1}:n:${md5('GET:/a')}`)}"`, 'RFC 2069 form when no qop is offered')

  const int = digestAuthorization('id', { realm: 'realm', nonce: 'n', qop: 'auth-int' }, { method: 'POST', uri: '/a', body: 'hi' }, 2, 'cn')
  t.equal(int, `Digest username="id", realm="realm", nonce="n", uri="/a", response="${md5(`${ha1}:n:00000002:cn:auth-int:${md5(`POST:/a:${md5('hi')}`)}`)}", qop=auth-int, nc=00000002, cnonce="cn"`)

  const sha = digestAuthorization('id', { realm: 'realm', nonce: 'n', qop: 'auth', algorithm: 'SHA-256' }, { method: 'GET', uri: '/' }, 1, 'cn')
  const s256 = (s: string): string => createHash('sha256').update(s).digest('hex')
  t.match(sha, `algorithm=SHA-256, response="${s256(`${s256('id:realm:')}:n:00000001:cn:auth:${s256('GET:/')}`)}"`)
})
