import t from 'tap'
import { createV1Token } from '../../lib/tokens/v1'
import { SECRET } from '../helpers/fixtures'
import { openWire } from '../helpers/wire'
import { TOKEN } from '../admin/helpers'
import { loggedServe } from '../helpers/logged-serve'

// Node's HTTP parser hands its error the raw bytes it refused (err.rawPacket):
// the whole head, Authorization header and CONNECT token included. Logged as
// `{ err }`, pino writes them out as a Buffer's byte values.

/** Every string in a log line, and every array of byte values decoded as text: what pino makes of a Buffer. */
function texts (value: unknown): string[] {
  if (typeof value === 'string') return [value]
  if (Array.isArray(value) && value.length > 0 && value.every(v => typeof v === 'number' && v >= 0 && v < 256)) {
    return [Buffer.from(value as number[]).toString('latin1')]
  }
  if (value !== null && typeof value === 'object') return Object.values(value).flatMap(texts)
  return []
}

t.test('what the HTTP parser refuses is logged without the bytes it refused, on every listener of serve', async t => {
  const { app, port, admin, metrics, lines: logLines } = await loggedServe(t, 'trace')

  const token = createV1Token('hub-1', SECRET)
  const digest = 'digest-response-5ecre7'
  const bearer = 'Bearer-on-a-scrape-0123456789'
  const heads: Array<[number, string]> = [
    [port, `CONNECT uuid:hub-1?response=${token} HTTP/1.1\r\nHost x\r\n\r\n`],
    [port, `GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="hub-1", response="${digest}"\r\nBad Header\r\n\r\n`],
    [admin, `GET /api/ids HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer ${TOKEN}\r\nBad Header\r\n\r\n`],
    [metrics, `GET /metrics HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer ${bearer}\r\nBad Header\r\n\r\n`]
  ]
  for (const [at, head] of heads) {
    const client = await openWire(at, false)
    client.write(head)
    await client.untilClosed()
    t.match(client.text, /^HTTP\/1\.1 400 Bad Request\r\n/, `port ${at === port ? 'public' : at === admin ? 'admin' : 'metrics'} refuses`)
  }
  await app.close()

  const lines = logLines()
  const answered = lines.filter(l => l.msg === 'answered a head the HTTP parser refused')
  t.equal(answered.length, 3, 'each refusal is logged by the handler that answered it: the public port\'s two and the metrics listener\'s')
  t.ok(answered.every(l => typeof l.code === 'string' && l.status === 400), 'with the parser\'s code and the status')
  // The admin listener answers in its own JSON form, and logs it as its other refusals.
  t.same(lines.filter(l => l.msg === 'admin request refused').map(l => [l.status, l.error]), [[400, 'bad_request']])
  const counted = lines.filter(l => l.msg === 'request refused by the HTTP parser')
  t.same(counted.map(l => [l.level, l.side, l.status]), [[30, 'hidden', 400], [30, 'mobile', 400]], 'and by the relay at info, on the public port')
  const seen = lines.flatMap(texts).join('\n')
  for (const secret of [token, digest, TOKEN, bearer]) t.notOk(seen.includes(secret), `no ${secret.slice(0, 6)}… in the logs, decoded or not`)
  t.notMatch(seen, /authorization/i, 'no Authorization header')
  t.notMatch(seen, /response=/, 'no CONNECT token parameter')
})
