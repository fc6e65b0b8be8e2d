import t from 'tap'
import { readCredential } from '../../lib/http/authorization'

const ID = '0f8fad5b-d9cb-469f-a165-70867728950e'

function auth (...values: string[]): string[] {
  return values.flatMap((v) => ['Authorization', v])
}

function read (rawHeaders: string[], url = '/', upgrade = false): ReturnType<typeof readCredential> {
  return readCredential({ rawHeaders, url, upgrade })
}

function basic (pair: string | Buffer): string {
  return 'Basic ' + Buffer.from(pair).toString('base64')
}

// The RFC 7235 auth-param list, through the Digest credential that carries it.
t.test('Digest auth-params', async (t) => {
  const digest = (params: string): ReturnType<typeof readCredential> => read(auth(`Digest ${params}`))
  const user = (username: string): ReturnType<typeof readCredential> => ({ kind: 'user', username, source: 'authorization' })
  t.strictSame(digest('username=b'), user('b'))
  t.strictSame(digest('Username="x y", REALM = rendezvous ,qop=auth'), user('x y'), 'names case-insensitive, OWS around = and commas, values keep their case')
  t.strictSame(digest(',, username=1 ,, ,b="2",'), user('1'), 'empty list elements')
  t.strictSame(digest('username="q\\"uo\\\\te\\d"'), user('q"uo\\ted'), 'quoted-pairs unescaped')
  t.strictSame(digest('username="x,y=z", b=c'), user('x,y=z'), 'comma and = inside quotes')
  t.strictSame(digest('a="", username=u'), user('u'), 'empty quoted string')
  t.strictSame(digest('username="caf\u00e9"'), user('caf\u00e9'), 'obs-text allowed in quotes')
  t.strictSame(digest('username=\t"b"\t'), user('b'), 'tabs are OWS')

  const malformed = [
    'a="unterminated',
    'a="bad\\',
    'a',
    'abc==',
    'YWxhZGRpbjpvcGVuc2VzYW1l',
    'a=',
    'a=,b=c',
    '=b',
    'a=b c=d',
    'a="b" c=d',
    'a=b"c"',
    'a="b"c',
    'a=b;c',
    'a="x\ny"',
    'a="x\u0000y"',
    'a="\u0100"',
    'a=@',
    'a=b,a=c',
    'a=b, A="c"'
  ]
  for (const text of malformed) {
    const got = digest(text)
    t.ok(got.kind === 'invalid' && ['malformed Digest parameters', 'repeated Digest parameter'].includes(got.reason), `${JSON.stringify(text)}: ${JSON.stringify(got)}`)
  }
})

t.test('Digest', async (t) => {
  t.strictSame(read(auth(`Digest username="${ID}", realm="rendezvous", nonce="abc", uri="/", response="0123"`)),
    { kind: 'user', username: ID, source: 'authorization' })
  t.strictSame(read(auth(`dIgEsT username=${ID}`)), { kind: 'user', username: ID, source: 'authorization' }, 'scheme case-insensitive, token value')
  t.strictSame(read(['AUTHORIZATION', 'Digest UserName="ABC"']), { kind: 'user', username: 'ABC', source: 'authorization' }, 'not canonicalised')
  t.strictSame(read(auth('Digest   username="a\\"b"  ')), { kind: 'user', username: 'a"b', source: 'authorization' })
  t.strictSame(read(auth('Digest username="x", userhash=false')), { kind: 'user', username: 'x', source: 'authorization' })
  t.strictSame(read(auth('Digest username="x", userhash="FALSE"')), { kind: 'user', username: 'x', source: 'authorization' })

  const invalid: Array<[string, string]> = [
    ['Digest', 'Digest username missing'],
    ['Digest realm="rendezvous"', 'Digest username missing'],
    ['Digest username=""', 'empty user name'],
    ['Digest username="a", username="b"', 'repeated Digest parameter'],
    ['Digest username="a", USERNAME="a"', 'repeated Digest parameter'],
    ['Digest username="a', 'malformed Digest parameters'],
    ['Digest dXNlcjpwYXNz==', 'malformed Digest parameters'],
    ['Digest username="a" realm="b"', 'malformed Digest parameters'],
    ['Digest username="a", userhash=true', 'Digest userhash is not supported'],
    ['Digest username="a", userhash="True"', 'Digest userhash is not supported'],
    ['Digest username="a", userhash=maybe', 'malformed Digest userhash'],
    ["Digest username=\"a\", username*=UTF-8''a", 'both username and username* given']
  ]
  for (const [value, reason] of invalid) {
    t.strictSame(read(auth(value)), { kind: 'invalid', reason }, value)
  }
})

t.test('Digest username* (RFC 8187)', async (t) => {
  const user = (value: string): ReturnType<typeof readCredential> => read(auth(`Digest username*=${value}, realm="r"`))
  t.strictSame(user("UTF-8''abc-DEF"), { kind: 'user', username: 'abc-DEF', source: 'authorization' })
  t.strictSame(user("utf-8'en'%41b%63"), { kind: 'user', username: 'Abc', source: 'authorization' }, 'language tag, hex of any case')
  t.strictSame(user("UTF-8''J%C3%A4s%C3%B8n%20Doe"), { kind: 'user', username: 'J\u00e4s\u00f8n Doe', source: 'authorization' })
  t.strictSame(user("ISO-8859-1''caf%E9"), { kind: 'user', username: 'caf\u00e9', source: 'authorization' })
  t.strictSame(user(`"UTF-8''${ID}"`), { kind: 'user', username: ID, source: 'authorization' }, 'quoted form tolerated')

  const bad = [
    "UTF-8''caf%E9", // not UTF-8
    "UTF-8''%C3", // truncated sequence
    "UTF-8''%zz",
    "UTF-8''%4",
    "UTF-8'abc", // one quote only
    "''abc", // no charset
    "US-ASCII''abc", // charset not ours
    'abc',
    '"UTF-8\'\'a b"'
  ]
  for (const value of bad) t.strictSame(user(value), { kind: 'invalid', reason: 'malformed Digest username*' }, value)
  t.strictSame(user("UTF-8''"), { kind: 'invalid', reason: 'empty user name' })
})

t.test('Basic', async (t) => {
  t.strictSame(read(auth(basic(`${ID}:anything`))), { kind: 'user', username: ID, source: 'authorization' })
  t.strictSame(read(auth(basic('user:pa:ss'))), { kind: 'user', username: 'user', source: 'authorization' }, 'first colon splits')
  t.strictSame(read(auth(basic('ab:'))), { kind: 'user', username: 'ab', source: 'authorization' }, 'empty password is fine')
  t.strictSame(read(auth('BASIC ' + Buffer.from('xy:z').toString('base64'))), { kind: 'user', username: 'xy', source: 'authorization' })
  t.strictSame(read(auth(basic('J\u00e4s:p'))), { kind: 'user', username: 'J\u00e4s', source: 'authorization' }, 'UTF-8')
  t.strictSame(read(auth(basic(Buffer.from('J\u00e4s:p', 'latin1')))), { kind: 'user', username: 'J\u00e4s', source: 'authorization' }, 'latin1 fallback')

  const malformed = [
    'Basic',
    'Basic ',
    basic('nocolon'),
    'Basic YWJj', // "abc", no colon
    'Basic YWI6eA', // missing padding
    'Basic YWI6eA=', // short padding
    'Basic YWI6eB==', // non-canonical trailing bits
    'Basic YW I6eA==',
    'Basic YWI6eA==,',
    'Basic a=b',
    'Basic *WI6eA==',
    'Basic username="x"'
  ]
  for (const value of malformed) t.strictSame(read(auth(value)), { kind: 'invalid', reason: 'malformed Basic credentials' }, value)
  t.strictSame(read(auth('Basic YWI6')), { kind: 'user', username: 'ab', source: 'authorization' }, 'a length divisible by 4 needs no padding')
  t.strictSame(read(auth(basic(':pw'))), { kind: 'invalid', reason: 'empty user name' })
})

t.test('other schemes and field counts', async (t) => {
  t.strictSame(read([]), { kind: 'none' })
  t.strictSame(read(['Host', 'x', 'Accept', '*/*']), { kind: 'none' })
  t.strictSame(read(auth('Bearer abc.def')), { kind: 'none' })
  t.strictSame(read(auth('Bearer a', 'Negotiate b')), { kind: 'none' }, 'several foreign fields are the app\'s business')
  t.strictSame(read(auth('')), { kind: 'none' })
  t.strictSame(read(auth('Digestive username="x"')), { kind: 'none' })
  t.strictSame(read(auth(`Digest username="${ID}"`, 'Bearer abc')), { kind: 'invalid', reason: 'duplicated Authorization' })
  t.strictSame(read(auth('Bearer abc', basic('a:b'))), { kind: 'invalid', reason: 'duplicated Authorization' })
  t.strictSame(read([...auth('Digest username="a"'), 'authorization', 'Digest username="a"']), { kind: 'invalid', reason: 'duplicated Authorization' })
  t.strictSame(read(['X-Authorization', 'Digest username="a"', 'Proxy-Authorization', 'Basic YTpi']), { kind: 'none' }, 'only the Authorization field counts')
  t.strictSame(read(['Host', 'h', 'Authorization']), { kind: 'none' }, 'odd trailing name ignored')
})

t.test('rendezvous query parameter', async (t) => {
  t.strictSame(read([], `/ws?rendezvous=${ID}`, true), { kind: 'user', username: ID, source: 'query' })
  t.strictSame(read([], `/ws?rendezvous=${ID}`, false), { kind: 'none' }, 'ignored without Upgrade')
  t.strictSame(read([], '/ws?rendezvous=', false), { kind: 'none' }, 'not even validated without Upgrade')
  t.strictSame(read([], '/ws?a=1&rendezvous=AbC&b=%zz', true), { kind: 'user', username: 'AbC', source: 'query' }, 'other parameters untouched')
  t.strictSame(read([], '/ws?rendezvous=a%2Db', true), { kind: 'user', username: 'a-b', source: 'query' }, 'percent-decoded')
  t.strictSame(read([], '/ws?rendez%76ous=x', true), { kind: 'user', username: 'x', source: 'query' }, 'name percent-decoded')
  t.strictSame(read([], '/ws?rendezvous=a+b', true), { kind: 'user', username: 'a b', source: 'query' }, '+ is a space')
  t.strictSame(read([], '/ws?rendezvous=x&rendezvous=X', true), { kind: 'user', username: 'x', source: 'query' }, 'same ID twice')
  t.strictSame(read([], 'http://h/ws?rendezvous=x#rendezvous=y', true), { kind: 'user', username: 'x', source: 'query' }, 'fragment ignored')
  t.strictSame(read([], '/ws?Rendezvous=x&rendezvousx=y', true), { kind: 'none' }, 'name is exact')
  t.strictSame(read([], '/ws', true), { kind: 'none' })

  t.strictSame(read([], '/ws?rendezvous=x&rendezvous=y', true), { kind: 'invalid', reason: 'repeated rendezvous parameter' })
  t.strictSame(read([], '/ws?rendezvous=', true), { kind: 'invalid', reason: 'empty rendezvous parameter' })
  t.strictSame(read([], '/ws?rendezvous', true), { kind: 'invalid', reason: 'empty rendezvous parameter' })
  t.strictSame(read([], '/ws?rendezvous=x&rendezvous=', true), { kind: 'invalid', reason: 'empty rendezvous parameter' })
  t.strictSame(read([], '/ws?rendezvous=%E0%A4%A', true), { kind: 'invalid', reason: 'malformed rendezvous parameter' })
})

t.test('Authorization and query together', async (t) => {
  const digest = auth(`Digest username="${ID.toUpperCase()}"`)
  t.strictSame(read(digest, `/ws?rendezvous=${ID}`, true), { kind: 'user', username: ID.toUpperCase(), source: 'authorization' }, 'agree case-insensitively')
  t.strictSame(read(digest, '/ws?rendezvous=other', true), { kind: 'invalid', reason: 'conflicting IDs' })
  t.strictSame(read(digest, '/ws?rendezvous=other', false), { kind: 'user', username: ID.toUpperCase(), source: 'authorization' }, 'no conflict without Upgrade')
  t.strictSame(read(auth(basic('a:b')), '/ws?rendezvous=b', true), { kind: 'invalid', reason: 'conflicting IDs' })
  t.strictSame(read(auth('Bearer t'), '/ws?rendezvous=x', true), { kind: 'user', username: 'x', source: 'query' }, 'a foreign scheme does not conflict')
  t.strictSame(read(auth('Digest realm="r"'), '/ws?rendezvous=x', true), { kind: 'invalid', reason: 'Digest username missing' }, 'a broken header is not rescued by the query')
  t.strictSame(read(digest, '/ws?rendezvous=', true), { kind: 'invalid', reason: 'empty rendezvous parameter' })
})
