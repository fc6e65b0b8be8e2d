import t from 'tap'
import { createHmac } from 'node:crypto'
import { createV1Token, parseV1Token, v1Mac } from '../../lib/tokens/v1'
import { RFC_KEY as SECRET } from '../helpers/fixtures'

// RFC 6238's test secret, so the key bytes are known without our base32 code.
const SECRET_B32 = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ'
const NONCE = 'AAAAAAAAAAAAAAAAAAAAAA'

function expectedMac (id: string, seconds: string, nonce: string): string {
  return createHmac('sha256', SECRET)
    .update(`rendezvous-v1\n${id}\n${seconds}\n${nonce}`)
    .digest('base64url')
}

t.test('createV1Token follows docs/protocol.md byte for byte', async (t) => {
  const token = createV1Token('abc-123', SECRET_B32, { now: 1_700_000_000_999, nonce: NONCE })
  t.equal(token, `v1.1700000000.${NONCE}.${expectedMac('abc-123', '1700000000', NONCE)}`)
})

t.test('the ID goes into the MAC in lower case', async (t) => {
  const token = createV1Token('ABC-Def', SECRET_B32, { now: 1_000, nonce: NONCE })
  t.equal(token.split('.')[3], expectedMac('abc-def', '1', NONCE))
})

t.test('the default nonce is 16 random bytes in base64url', async (t) => {
  const a = parseV1Token(createV1Token('x', SECRET_B32))
  const b = parseV1Token(createV1Token('x', SECRET_B32))
  t.ok(a && b)
  t.match(a!.nonce, /^[A-Za-z0-9_-]{22}$/)
  t.equal(Buffer.from(a!.nonce, 'base64url').length, 16)
  t.not(a!.nonce, b!.nonce)
})

t.test('the default clock is the current time, in whole seconds', async (t) => {
  const before = Math.floor(Date.now() / 1000)
  const parsed = parseV1Token(createV1Token('x', SECRET_B32))
  const after = Math.floor(Date.now() / 1000)
  t.ok(parsed!.seconds >= before && parsed!.seconds <= after)
})

t.test('createV1Token refuses a nonce the server would refuse', async (t) => {
  t.throws(() => createV1Token('x', SECRET_B32, { nonce: 'short' }), TypeError)
  t.throws(() => createV1Token('x', SECRET_B32, { nonce: 'a'.repeat(65) }), TypeError)
  t.throws(() => createV1Token('x', SECRET_B32, { nonce: 'a'.repeat(15) + '.' }), TypeError)
})

t.test('v1Mac is HMAC-SHA256 over the documented message', async (t) => {
  const mac = v1Mac('Some.ID~x', SECRET, '0042', NONCE)
  t.equal(mac.toString('base64url'), expectedMac('some.id~x', '0042', NONCE))
})

t.test('parseV1Token keeps the seconds text as sent', async (t) => {
  const mac = expectedMac('x', '0001700000000', NONCE)
  const parsed = parseV1Token(`v1.0001700000000.${NONCE}.${mac}`)
  t.same(parsed, { seconds: 1_700_000_000, secondsText: '0001700000000', nonce: NONCE, mac })
})

t.test('parseV1Token accepts the extremes of each field', async (t) => {
  const mac = 'A'.repeat(43)
  t.ok(parseV1Token(`v1.0.${'a'.repeat(16)}.${mac}`))
  t.ok(parseV1Token(`v1.${'9'.repeat(16)}.${'_-'.repeat(32)}.${mac}`))
  // Fixed-width senders: 16 significant digits behind as many zeros as fill 32 characters.
  t.same(parseV1Token(`v1.${'0'.repeat(10)}1700000000.${NONCE}.${mac}`)?.seconds, 1_700_000_000)
  t.same(parseV1Token(`v1.${'0'.repeat(16)}${'9'.repeat(16)}.${'_-'.repeat(32)}.${mac}`)?.seconds, Number('9'.repeat(16)))
  t.same(parseV1Token(`v1.${'0'.repeat(32)}.${NONCE}.${mac}`)?.seconds, 0)
})

t.test('parseV1Token refuses malformed tokens', async (t) => {
  const mac = 'A'.repeat(43)
  const bad = [
    '',
    'v1',
    `v2.1.${NONCE}.${mac}`,
    `V1.1.${NONCE}.${mac}`,
    `v1.1.${NONCE}`,
    `v1.1.${NONCE}.${mac}.`,
    `v1.1.${NONCE}.${mac}.x`,
    `v1..${NONCE}.${mac}`,
    `v1.-1.${NONCE}.${mac}`,
    `v1.+1.${NONCE}.${mac}`,
    `v1.1e9.${NONCE}.${mac}`,
    `v1. 1.${NONCE}.${mac}`,
    `v1.0x10.${NONCE}.${mac}`,
    `v1.${'1'.repeat(17)}.${NONCE}.${mac}`,
    `v1.${'0'.repeat(15)}${'1'.repeat(17)}.${NONCE}.${mac}`,
    `v1.${'0'.repeat(23)}1700000000.${NONCE}.${mac}`,
    `v1.1.${'a'.repeat(15)}.${mac}`,
    `v1.1.${'a'.repeat(65)}.${mac}`,
    `v1.1.${'a'.repeat(15)}=.${mac}`,
    `v1.1.${'a'.repeat(15)}+.${mac}`,
    `v1.1.${NONCE}.${'A'.repeat(42)}`,
    `v1.1.${NONCE}.${'A'.repeat(44)}`,
    `v1.1.${NONCE}.${'A'.repeat(42)}=`,
    `v1.1.${NONCE}.${'A'.repeat(42)}/`,
    `v1.1.${NONCE}.${mac}`.padEnd(100_000, 'A')
  ]
  for (const token of bad) t.equal(parseV1Token(token), undefined, JSON.stringify(token.slice(0, 80)))
})
