import t from 'tap'
import { Writable } from 'node:stream'
import { createV1Token } from '../../lib/tokens/v1'
import { startRendezvous, untilParked } from '../helpers/rendezvous'
import { relayOnce } from '../helpers/wire'
import { SECRET } from '../helpers/fixtures'
import { until } from '../helpers/until'
import { api, TOKEN } from '../admin/helpers'

interface Line { msg: string, level: number, reqId?: string, connId?: string, side?: string, [key: string]: unknown }

t.test('a whole run at trace level logs no token, secret, admin token or Authorization header, and ties both sides by id', async t => {
  let raw = ''
  const stream = new Writable({ write (chunk, _e, cb) { raw += String(chunk); cb() } })
  const relay = await startRendezvous({
    fastify: { logger: { level: 'trace', stream } },
    plugin: { admin: { port: 0, token: TOKEN } }
  })
  t.teardown(relay.close)
  const secrets = [SECRET, TOKEN]

  // A refused CONNECT with a wrong token, a refused one without, then a good park.
  const wrong = createV1Token('hub-1', 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ')
  secrets.push(wrong)
  const bad = await relay.open()
  bad.write(`CONNECT uuid:hub-1?response=${wrong} HTTP/1.1\r\nHost: h\r\n\r\n`)
  await bad.untilClosed()
  const hidden = await relay.park('hub-1')
  await untilParked(relay, 1)

  // A rendezvous whose Authorization carries a digest response and a password-like value.
  const digest = 'Digest username="hub-1", realm="rendezvous", nonce="n0nce-abc", uri="/", response="6629fae49393a05397450978507c4ef1", opaque="0pq"'
  secrets.push('6629fae49393a05397450978507c4ef1', 'n0nce-abc')
  const client = await relay.open()
  await relayOnce(client, hidden, `GET /page HTTP/1.1\r\nHost: h\r\nAuthorization: ${digest}\r\n\r\n`, 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok', 'ok')
  await until(() => relay.app.rendezvous.stats().spliced === 0)

  // Admin actions that hand out secrets, and a refused admin call.
  const added = await api(relay, 'POST', '/api/ids', { id: 'hub-2' })
  const rotated = await api(relay, 'POST', '/api/ids/hub-2/rotate', { overlapSeconds: 5 })
  secrets.push(added.body.secret, rotated.body.secret)
  t.equal((await api(relay, 'GET', '/api/ids', undefined, 'not-the-admin-token-at-all')).status, 401)
  secrets.push('not-the-admin-token-at-all')
  await api(relay, 'DELETE', '/api/ids/hub-2')
  await relay.close()

  t.ok(raw.length > 0)
  for (const secret of secrets) t.notOk(raw.includes(secret), `no ${secret.slice(0, 6)}… in the logs`)
  t.notMatch(raw, /authorization/i, 'no Authorization header')
  t.notMatch(raw, /response=/, 'no CONNECT token parameter')

  const lines = raw.trim().split('\n').map(l => JSON.parse(l) as Line)
  const parked = lines.find(l => l.msg === 'parked' && l.level === 20)
  const met = lines.find(l => l.msg === 'relaying' && l.level === 20)
  const closed = lines.find(l => l.msg === 'relay closed' && l.level === 30)
  t.ok(parked?.connId, 'the park line has a connId, at debug')
  t.equal(met?.connId, parked?.connId, 'the relaying line (debug) names the hidden connection')
  t.ok(met?.reqId, 'and carries the mobile request id')
  t.equal(closed?.reqId, met?.reqId, 'the splice end line (info) carries the same request id')
  t.equal(closed?.connId, parked?.connId, 'and names the hidden connection itself')
  const failed = lines.find(l => l.msg === 'CONNECT authentication failed')
  t.ok(failed?.connId, 'the failed CONNECT\'s line has a connId')
  t.ok(lines.some(l => l.msg === 'CONNECT refused' && l.connId === failed?.connId && l.status === 401), 'the same as its 401 line')
})
