import t from 'tap'
import fc from 'fast-check'
import { createHmac } from 'node:crypto'
import { createDefaultVerifier } from '../../lib/tokens/verifier'
import { MemoryReplayCache } from '../../lib/stores/memory-replay-cache'
import { encodeBase32 } from '../../lib/registry/ids'
import { anId, params } from '../helpers/properties'

/* The default verifier against tokens built here from node:crypto alone. */

const SKEW = 120
const NOW = 1_700_000_000_000
const NONCE = fc.string({ unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-'), minLength: 16, maxLength: 64 })
const SECRET = fc.uint8Array({ minLength: 20, maxLength: 64 })

function token (id: string, key: Uint8Array, seconds: number, nonce: string): string {
  const mac = createHmac('sha256', key).update(`rendezvous-v1\n${id.toLowerCase()}\n${seconds}\n${nonce}`).digest('base64url')
  return `v1.${seconds}.${nonce}.${mac}`
}

function verifier (id: string, key: Uint8Array): ReturnType<typeof createDefaultVerifier> {
  const secret = encodeBase32(key)
  return createDefaultVerifier({
    lookupSecret: asked => asked === id.toLowerCase() ? secret : undefined,
    replayCache: new MemoryReplayCache({ maxEntries: 100 }),
    totp: 'strict',
    skewSeconds: SKEW,
    now: () => NOW
  })
}

t.test('a v1 token within the skew is accepted exactly once, under any case of its ID', async t => {
  await fc.assert(fc.asyncProperty(anId, SECRET, NONCE, fc.integer({ min: -SKEW, max: SKEW }), async (id, key, nonce, offset) => {
    const verify = verifier(id, key)
    const tkn = token(id, key, NOW / 1000 + offset, nonce)
    const first = await verify(id.toUpperCase(), tkn)
    const again = await verify(id.toLowerCase(), tkn)
    return first.ok && !again.ok && again.reason === 'replayed'
  }), params())
  t.pass()
})

t.test('outside the skew, with another key, another ID or one changed character, a token is refused', async t => {
  const TAMPER = fc.record({ at: fc.nat(), to: fc.constantFrom(...'AZaz09_-.') })
  await fc.assert(fc.asyncProperty(anId, SECRET, NONCE, fc.integer({ min: SKEW + 1, max: 10 ** 6 }), fc.boolean(), TAMPER, SECRET,
    async (id, key, nonce, beyond, future, tamper, otherKey) => {
      const verify = verifier(id, key)
      const seconds = NOW / 1000
      const stale = await verify(id, token(id, key, seconds + (future ? beyond : -beyond), nonce))
      const foreign = await verify(id, token(id, otherKey, seconds, nonce))
      const otherId = await verify(id, token(id + 'x', key, seconds, nonce))
      const good = token(id, key, seconds, nonce)
      const i = tamper.at % good.length
      const changed = good.slice(0, i) + tamper.to + good.slice(i + 1)
      const tampered = changed === good ? { ok: false } : await verify(id, changed)
      const sameKey = Buffer.compare(Buffer.from(key), Buffer.from(otherKey)) === 0
      return !stale.ok && (sameKey || !foreign.ok) && !otherId.ok && !tampered.ok
    }), params())
  t.pass()
})

t.test('any string as a token is refused with 401 for an unknown ID, and never throws', async t => {
  await fc.assert(fc.asyncProperty(anId, fc.string({ maxLength: 200 }), async (id, tkn) => {
    const verdict = await verifier('known-id', new Uint8Array(20).fill(7))(id === 'known-id' ? id + '2' : id, tkn)
    return !verdict.ok && verdict.status === 401
  }), params())
  t.pass()
})
