import t from 'tap'
import { readCredential } from '../../lib/http/authorization'
import { serializeHead } from '../../lib/http/head'
import { trimOws, trimOwsEnd } from '../../lib/http/ows'
import { canonicalSecret } from '../../lib/registry/ids'

/*
 * Whitespace is trimmed in linear time. A regex such as /[ \t]+$/ restarts at
 * every blank of a long run that does not end the value: a 16 KB header of
 * blanks with one letter after them held the event loop for a third of a
 * second, before any credential was checked, and a few such requests a second
 * stalled every client of the relay. The runs below are far longer than a
 * head may be, so the quadratic trim takes tens of seconds on them, and the
 * linear one a millisecond.
 */

const RUN = 150_000
const blanks = ' \t'.repeat(RUN / 2)

function elapsedMs (work: () => unknown): number {
  const start = process.hrtime.bigint()
  work()
  return Number(process.hrtime.bigint() - start) / 1e6
}

t.test('trims SP and HTAB only, at the edges only', async t => {
  t.equal(trimOws(' \t a b \t '), 'a b')
  t.equal(trimOws('\u00a0x\u00a0'), '\u00a0x\u00a0', 'a latin1 0xA0 is a byte of the value')
  t.equal(trimOws(' \t '), '')
  t.equal(trimOwsEnd(' a '), ' a')
  t.equal(trimOwsEnd('a'), 'a')
})

t.test('a long run of blanks inside an Authorization value is read in linear time', async t => {
  for (const value of [`Digest${blanks}x`, `Basic${blanks}x`, `Basic YTpi${blanks}x`, `${blanks}Digest username="a"${blanks}x`]) {
    let credential
    const ms = elapsedMs(() => { credential = readCredential({ rawHeaders: ['Authorization', value], url: '/', upgrade: false }) })
    t.equal(credential!.kind, 'invalid', 'malformed, and said so')
    t.ok(ms < 2000, `${value.slice(0, 12).trim()}…: ${ms.toFixed(1)} ms`)
  }
})

t.test('a long run of blanks inside a header value is re-serialised in linear time', async t => {
  let head: Buffer | undefined
  const ms = elapsedMs(() => { head = serializeHead({ method: 'GET', url: '/', httpVersion: '1.1', rawHeaders: ['X-A', `a${blanks}b`] }) })
  t.equal(head!.length, 'GET / HTTP/1.1\r\nX-A: \r\n\r\n'.length + RUN + 2, 'the inner blanks kept, byte for byte')
  t.ok(ms < 2000, `${ms.toFixed(1)} ms`)
})

t.test('a secret followed by a long run of = that does not end it is refused in linear time', async t => {
  const ms = elapsedMs(() => { t.throws(() => canonicalSecret(`JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP${'='.repeat(RUN)}A`)) })
  t.ok(ms < 2000, `${ms.toFixed(1)} ms`)
})
