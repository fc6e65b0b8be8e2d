import t from 'tap'
import fc from 'fast-check'
import { parseConnectTarget } from '../../lib/http/connect-target'
import { anId, params } from '../helpers/properties'

const TOKEN_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~-'
const aTkn = fc.string({ unit: fc.constantFrom(...TOKEN_CHARS), minLength: 1, maxLength: 512 })

t.test('every well-formed target parses back to its ID (lower case) and token', async t => {
  fc.assert(fc.property(anId, aTkn, fc.constantFrom('uuid:', 'UUID:', 'Uuid:'), (id, token, prefix) => {
    const parsed = parseConnectTarget(`${prefix}${id}?response=${token}`)
    return parsed.kind === 'ok' && parsed.id === id.toLowerCase() && parsed.token === token
  }), params())
  t.pass()
})

t.test('any string gets a verdict, never an exception, and only a well-formed one is ok', async t => {
  const anyTarget = fc.oneof(
    fc.string({ maxLength: 300 }),
    fc.string({ unit: 'binary', maxLength: 300 }),
    fc.tuple(anId, fc.string({ maxLength: 80 })).map(([id, rest]) => `uuid:${id}${rest}`),
    fc.tuple(anId, fc.string({ maxLength: 80 })).map(([id, q]) => `uuid:${id}?${q}`)
  )
  fc.assert(fc.property(anyTarget, target => {
    const parsed = parseConnectTarget(target)
    if (parsed.kind !== 'ok') return true
    // What was accepted is exactly the grammar: uuid:ID?response=TOKEN, nothing else.
    return /^uuid:[A-Za-z0-9._~-]{1,128}\?response=[A-Za-z0-9._~-]{1,512}$/i.test(target) &&
      target.toLowerCase().startsWith(`uuid:${parsed.id}?`)
  }), params())
  t.pass()
})

t.test('extra parameters, repeats and bad token characters are malformed', async t => {
  fc.assert(fc.property(anId, aTkn, fc.constantFrom('&response=x', '&other=1', '&', '%41', ' ', '#'), (id, token, extra) => {
    const parsed = parseConnectTarget(`uuid:${id}?response=${token}${extra}`)
    return parsed.kind === 'malformed'
  }), params())
  t.pass()
})
