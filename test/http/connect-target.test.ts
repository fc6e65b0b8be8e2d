import t from 'tap'
import { parseConnectTarget } from '../../lib/http/connect-target'

const ID = '0f8fad5b-d9cb-469f-a165-70867728950e'
const V1 = 'v1.1700000000.AAECAwQFBgcICQoLDA0ODw.q1w2e3r4t5y6u7i8o9p0-_a1s2d3f4g5h6j7k8l9z0x'

t.test('accepted targets', async (t) => {
  t.strictSame(parseConnectTarget(`uuid:${ID}?response=${V1}`), { kind: 'ok', id: ID, token: V1 })
  t.strictSame(parseConnectTarget(`UUID:${ID.toUpperCase()}?response=123456`), { kind: 'ok', id: ID, token: '123456' }, 'prefix and ID case-insensitive, ID canonicalised')
  t.strictSame(parseConnectTarget('Uuid:My.Box_1~x?response=a.b_c~d-e'), { kind: 'ok', id: 'my.box_1~x', token: 'a.b_c~d-e' }, 'any valid ID, not only UUIDs')
  t.strictSame(parseConnectTarget(`uuid:${'a'.repeat(128)}?response=${'t'.repeat(512)}`), { kind: 'ok', id: 'a'.repeat(128), token: 't'.repeat(512) }, 'limits are inclusive')
  t.strictSame(parseConnectTarget('uuid:a?response=TkN'), { kind: 'ok', id: 'a', token: 'TkN' }, 'token case kept')
})

t.test('missing token', async (t) => {
  for (const target of [`uuid:${ID}`, `uuid:${ID}?`, `uuid:${ID}?response`, `uuid:${ID}?response=`]) {
    t.strictSame(parseConnectTarget(target), { kind: 'missing_token', id: ID }, target)
  }
  t.strictSame(parseConnectTarget('UUID:ABC'), { kind: 'missing_token', id: 'abc' })
})

t.test('not uuid', async (t) => {
  const reason = 'only uuid: targets are accepted'
  for (const target of ['example.com:443', '127.0.0.1:22', '[::1]:443', 'http://x/', '/', '', 'uuid', 'uuid;x?response=t', ' uuid:x?response=t', 'urn:uuid:x?response=t']) {
    t.strictSame(parseConnectTarget(target), { kind: 'not_uuid', reason }, JSON.stringify(target))
  }
})

t.test('malformed', async (t) => {
  const cases: Array<[string, string]> = [
    ['uuid:', 'invalid ID'],
    ['uuid:?response=t', 'invalid ID'],
    [`uuid:${'a'.repeat(129)}?response=t`, 'invalid ID'],
    [`uuid:${ID}:443`, 'invalid ID'],
    ['uuid:a b?response=t', 'invalid ID'],
    ['uuid:a%2Db?response=t', 'invalid ID'],
    ['uuid:a/b?response=t', 'invalid ID'],
    ['uuid:a#x?response=t', 'invalid ID'],
    ['uuid:\u00e9?response=t', 'invalid ID'],
    ['uuid:bad id', 'invalid ID'],
    ['uuid:a?response=t&response=t', 'repeated response parameter'],
    ['uuid:a?response=&response=t', 'repeated response parameter'],
    ['uuid:a?response=t&x=1', 'unexpected query parameter'],
    ['uuid:a?x=1', 'unexpected query parameter'],
    ['uuid:a?Response=t', 'unexpected query parameter'],
    ['uuid:a?response=t&', 'unexpected query parameter'],
    ['uuid:a?&response=t', 'unexpected query parameter'],
    ['uuid:a?resp%6Fnse=t', 'unexpected query parameter'],
    [`uuid:a?response=${'t'.repeat(513)}`, 'token too long'],
    ['uuid:a?response=t%41', 'invalid token characters'],
    ['uuid:a?response=t+u', 'invalid token characters'],
    ['uuid:a?response=a/b', 'invalid token characters'],
    ['uuid:a?response=a=b', 'invalid token characters'],
    ['uuid:a?response=a?b', 'invalid token characters'],
    ['uuid:a?response=t#frag', 'invalid token characters'],
    ['uuid:a?response=caf\u00e9', 'invalid token characters']
  ]
  for (const [target, reason] of cases) {
    t.strictSame(parseConnectTarget(target), { kind: 'malformed', reason }, JSON.stringify(target))
  }
})

t.test('length cap comes first', async (t) => {
  const long = `uuid:a?response=${'t'.repeat(2048)}`
  t.strictSame(parseConnectTarget(long), { kind: 'malformed', reason: 'target too long' })
  t.strictSame(parseConnectTarget('x'.repeat(2049)), { kind: 'malformed', reason: 'target too long' }, 'even for a non-uuid target')
  const exact = `uuid:${'a'.repeat(128)}?response=${'t'.repeat(2048 - 128 - 'uuid:?response='.length)}`
  t.equal(exact.length, 2048)
  t.strictSame(parseConnectTarget(exact), { kind: 'malformed', reason: 'token too long' }, '2048 itself passes the cap')
})
