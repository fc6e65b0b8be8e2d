import t from 'tap'
import { createHmac, randomBytes } from 'node:crypto'
import { createTotp, isTotpCode, matchTotp, totpStep } from '../../lib/tokens/totp'
import { RFC_KEY as SECRET } from '../helpers/fixtures'

const SECRET_B32 = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ'

// RFC 4226 §5.3 / RFC 6238 §4, written out here so it does not share code with lib/.
function reference (key: Buffer, step: number, digits: number): string {
  const counter = Buffer.alloc(8)
  counter.writeBigUInt64BE(BigInt(step))
  const mac = createHmac('sha1', key).update(counter).digest()
  const offset = mac[mac.length - 1]! & 0x0f
  const bin = mac.readUInt32BE(offset) & 0x7fffffff
  return String(bin % 10 ** digits).padStart(digits, '0')
}

// RFC 6238 Appendix B, SHA-1 column.
const RFC_VECTORS: Array<[number, string]> = [
  [59, '94287082'],
  [1111111109, '07081804'],
  [1111111111, '14050471'],
  [1234567890, '89005924'],
  [2000000000, '69279037'],
  [20000000000, '65353130']
]

t.test('RFC 6238 SHA-1 test vectors', async (t) => {
  for (const [seconds, code] of RFC_VECTORS) {
    t.equal(createTotp(SECRET_B32, seconds * 1000, 8), code, `T=${seconds}`)
    t.equal(createTotp(SECRET_B32, seconds * 1000, 6), code.slice(2), `T=${seconds}, 6 digits`)
    t.equal(createTotp(SECRET_B32, seconds * 1000, 7), code.slice(1), `T=${seconds}, 7 digits`)
  }
})

t.test('the independent reference agrees with the RFC, so it can judge other secrets', async (t) => {
  for (const [seconds, code] of RFC_VECTORS) t.equal(reference(SECRET, Math.floor(seconds / 30), 8), code)
})

t.test('createTotp matches the reference for random secrets and times', async (t) => {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
  for (let i = 0; i < 50; i++) {
    const bytes = randomBytes(20)
    let bits = ''
    for (const b of bytes) bits += b.toString(2).padStart(8, '0')
    const b32 = bits.match(/.{5}/g)!.map((chunk) => alphabet[parseInt(chunk, 2)]).join('')
    const now = Math.floor(Math.random() * 4e12)
    t.equal(createTotp(b32, now), reference(bytes, Math.floor(now / 30_000), 6))
  }
})

t.test('createTotp defaults to 6 digits and refuses other lengths', async (t) => {
  t.match(createTotp(SECRET_B32), /^\d{6}$/)
  t.throws(() => createTotp(SECRET_B32, 0, 5), RangeError)
  t.throws(() => createTotp(SECRET_B32, 0, 9), RangeError)
  t.throws(() => createTotp(SECRET_B32, 0, 6.5), RangeError)
})

t.test('isTotpCode accepts 6 to 8 digits only', async (t) => {
  for (const ok of ['000000', '1234567', '12345678']) t.ok(isTotpCode(ok), ok)
  for (const bad of ['', '12345', '123456789', '12345a', ' 123456', '123456\n', '１２３４５６']) t.notOk(isTotpCode(bad), JSON.stringify(bad))
})

t.test('totpStep uses a 30 s step from T0 = 0', async (t) => {
  t.equal(totpStep(0), 0)
  t.equal(totpStep(29_999), 0)
  t.equal(totpStep(30_000), 1)
})

t.test('matchTotp accepts the current step and one either side', async (t) => {
  const now = 1_700_000_015_000
  const step = Math.floor(now / 30_000)
  for (const offset of [-1, 0, 1] as const) {
    for (const digits of [6, 7, 8]) {
      t.same(matchTotp(SECRET, reference(SECRET, step + offset, digits), now), { step: step + offset, offset }, `offset ${offset}, ${digits} digits`)
    }
  }
  for (const offset of [-2, 2]) {
    t.equal(matchTotp(SECRET, reference(SECRET, step + offset, 6), now), undefined, `offset ${offset}`)
  }
})

t.test('matchTotp refuses wrong codes and wrong keys', async (t) => {
  const now = 1_700_000_015_000
  const code = reference(SECRET, Math.floor(now / 30_000), 6)
  const wrong = String((Number(code) + 1) % 1_000_000).padStart(6, '0')
  t.equal(matchTotp(SECRET, wrong, now), undefined)
  t.equal(matchTotp(randomBytes(20), code, now), undefined)
  t.equal(matchTotp(SECRET, code + 'x', now), undefined)
  t.equal(matchTotp(SECRET, code.slice(1), now), undefined)
})

t.test('the step boundaries are exact', async (t) => {
  const step = 56_666_667
  const code = reference(SECRET, step, 6)
  // Acceptable from the first ms of step - 1 to the last ms of step + 1.
  t.ok(matchTotp(SECRET, code, (step - 1) * 30_000))
  t.notOk(matchTotp(SECRET, code, (step - 1) * 30_000 - 1))
  t.ok(matchTotp(SECRET, code, (step + 2) * 30_000 - 1))
  t.notOk(matchTotp(SECRET, code, (step + 2) * 30_000))
})
