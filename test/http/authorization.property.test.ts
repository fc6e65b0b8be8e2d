import t from 'tap'
import fc from 'fast-check'
import { readCredential } from '../../lib/http/authorization'
import { anId, aToken, params } from '../helpers/properties'

/** Quotes `text` as an RFC 9110 quoted-string, escaping what must be and, at random, what need not be. */
const quoted = (text: string, escapeAll: boolean): string =>
  '"' + [...text].map(c => c === '"' || c === '\\' || (escapeAll && /[A-Za-z]/.test(c)) ? '\\' + c : c).join('') + '"'

const OWS = fc.constantFrom('', ' ', '\t', '  ')
const otherParam = fc.tuple(aToken(10).filter(n => !/^username\*?$|^userhash$/i.test(n)), fc.oneof(aToken(20), fc.string({ unit: fc.constantFrom(...'\t !#$%&()*+,-./09:;<=>?@AZ[\\]^_`az{|}~"'), maxLength: 20 }).map(s => quoted(s, false))))
  .map(([name, value]) => `${name}=${value}`)

const credential = (rawHeaders: string[], url = '/', upgrade = false): ReturnType<typeof readCredential> =>
  readCredential({ rawHeaders, url, upgrade })

t.test('Digest: the user name is found among any other parameters, in any order, quoted or not', async t => {
  fc.assert(fc.property(anId, fc.uniqueArray(otherParam, { maxLength: 6, selector: p => p.slice(0, p.indexOf('=')).toLowerCase() }), fc.nat(), OWS, fc.boolean(), fc.constantFrom('Digest', 'digest', 'DIGEST'),
    (id, others, at, ows, escapeAll, scheme) => {
      const user = `username${ows}=${ows}${quoted(id, escapeAll)}`
      const params = [...others]
      params.splice(at % (params.length + 1), 0, user)
      const got = credential(['Host', 'h', 'Authorization', `${scheme} ${params.join(`${ows},${ows}`)}`])
      return got.kind === 'user' && got.username === id && got.source === 'authorization'
    }), params())
  t.pass()
})

t.test('Basic: the user name is what precedes the first colon', async t => {
  fc.assert(fc.property(fc.string({ maxLength: 40 }).filter(u => !u.includes(':') && u !== ''), fc.string({ maxLength: 40 }), (user, password) => {
    const got = credential(['Authorization', 'Basic ' + Buffer.from(`${user}:${password}`, 'utf8').toString('base64')])
    return got.kind === 'user' && got.username === user
  }), params())
  t.pass()
})

t.test('any header values get a verdict, never an exception; two rendezvous fields are always refused', async t => {
  const value = fc.oneof(fc.string({ maxLength: 120 }), fc.string({ unit: 'binary', maxLength: 120 }),
    fc.tuple(fc.constantFrom('Digest ', 'Basic ', 'Bearer '), fc.string({ maxLength: 100 })).map(([a, b]) => a + b))
  fc.assert(fc.property(fc.array(value, { minLength: 1, maxLength: 3 }), fc.string({ maxLength: 60 }), fc.boolean(), (values, url, upgrade) => {
    const raw = values.flatMap(v => ['Authorization', v])
    const got = credential(raw, '/' + url, upgrade)
    const rendezvousFields = values.filter(v => /^[ \t]*(digest|basic)([ \t]|$)/i.test(v)).length
    if (rendezvousFields > 0 && values.length > 1) return got.kind === 'invalid'
    return ['none', 'invalid', 'user'].includes(got.kind)
  }), params())
  t.pass()
})

t.test('?rendezvous= names the ID on an Upgrade only, and must agree with Authorization', async t => {
  fc.assert(fc.property(anId, anId, fc.boolean(), (a, b, upgrade) => {
    const url = `/ws?x=1&rendezvous=${encodeURIComponent(a)}`
    const alone = credential(['Host', 'h'], url, upgrade)
    if (!upgrade) return alone.kind === 'none'
    const both = credential(['Authorization', `Digest username="${b}"`], url, upgrade)
    const agree = a.toLowerCase() === b.toLowerCase()
    return alone.kind === 'user' && alone.username === a && alone.source === 'query' &&
      (agree ? both.kind === 'user' && both.source === 'authorization' : both.kind === 'invalid')
  }), params())
  t.pass()
})
