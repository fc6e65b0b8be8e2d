import { TextDecoder } from 'node:util'
import { trimOws, trimOwsEnd } from './ows'

export type Credential =
  | { kind: 'none' }
  | { kind: 'invalid', reason: string }
  | { kind: 'user', username: string, source: 'authorization' | 'query' }

type Outcome = { username: string } | { reason: string } | undefined

// RFC 9110 token and quoted-string. Header strings come from Node decoded as
// latin1, so obs-text is \x80-\xFF and anything above that cannot be a byte.
const TOKEN = /[!#$%&'*+.^_`|~0-9A-Za-z-]+/y
const OWS = /[ \t]*/y
const QUOTED = /"((?:[\t \x21\x23-\x5B\x5D-\x7E\x80-\xFF]|\\[\t \x21-\x7E\x80-\xFF])*)"/y
const QUOTED_PAIR = /\\([\s\S])/g
// RFC 8187 ext-value: charset ' [ language ] ' value-chars
const EXT_VALUE = /^([A-Za-z0-9!#$%&+^_`{}~-]+)'([A-Za-z0-9-]*)'((?:%[0-9A-Fa-f]{2}|[A-Za-z0-9!#$&+.^_`|~-])*)$/
// RFC 7617 wants RFC 4648 §4 base64, padding included.
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/
const SCHEME = /^([^ \t]+)(?:[ \t]+([\s\S]*))?$/

const utf8 = new TextDecoder('utf-8', { fatal: true })

function match (re: RegExp, text: string, pos: number): RegExpExecArray | null {
  re.lastIndex = pos
  return re.exec(text)
}

/**
 * Parses an RFC 7235 `#auth-param` list into a map keyed by lower-cased
 * parameter names, or says why it is malformed (a repeated name included).
 */
function parseParams (text: string): Map<string, string> | string {
  const params = new Map<string, string>()
  let pos = 0
  // A comma must separate two parameters, while empty elements (",,") are legal.
  let needComma = false
  for (;;) {
    pos += match(OWS, text, pos)![0].length
    if (pos === text.length) return params
    if (text[pos] === ',') {
      pos++
      needComma = false
      continue
    }
    if (needComma) return 'malformed Digest parameters'
    const name = match(TOKEN, text, pos)
    if (name === null) return 'malformed Digest parameters'
    pos += name[0].length
    pos += match(OWS, text, pos)![0].length
    if (text[pos] !== '=') return 'malformed Digest parameters'
    pos++
    pos += match(OWS, text, pos)![0].length
    let value: string
    const quoted = match(QUOTED, text, pos)
    if (quoted !== null) {
      value = quoted[1].replace(QUOTED_PAIR, '$1')
      pos += quoted[0].length
    } else {
      const token = match(TOKEN, text, pos)
      if (token === null) return 'malformed Digest parameters'
      value = token[0]
      pos += token[0].length
    }
    const key = name[0].toLowerCase()
    // RFC 7235 §2.1: each parameter name occurs once; two user names would be ambiguous.
    if (params.has(key)) return 'repeated Digest parameter'
    params.set(key, value)
    needComma = true
  }
}

function decodeExtValue (text: string): string | undefined {
  const m = EXT_VALUE.exec(text)
  if (m === null) return undefined
  const charset = m[1].toLowerCase()
  if (charset !== 'utf-8' && charset !== 'iso-8859-1') return undefined
  const bytes: number[] = []
  const chars = m[3]
  for (let i = 0; i < chars.length; i++) {
    if (chars[i] === '%') {
      bytes.push(parseInt(chars.slice(i + 1, i + 3), 16))
      i += 2
    } else {
      bytes.push(chars.charCodeAt(i))
    }
  }
  const buf = Buffer.from(bytes)
  if (charset === 'iso-8859-1') return buf.toString('latin1')
  try {
    return utf8.decode(buf)
  } catch {
    return undefined
  }
}

function digestUser (text: string): Outcome {
  const params = parseParams(text)
  if (typeof params === 'string') return { reason: params }
  const userhash = params.get('userhash')
  if (userhash !== undefined) {
    const flag = userhash.toLowerCase()
    // A hashed user name cannot be looked up without trying every ID.
    if (flag === 'true') return { reason: 'Digest userhash is not supported' }
    if (flag !== 'false') return { reason: 'malformed Digest userhash' }
  }
  const plain = params.get('username')
  const extended = params.get('username*')
  if (plain !== undefined && extended !== undefined) return { reason: 'both username and username* given' }
  if (plain !== undefined) return { username: plain }
  if (extended === undefined) return { reason: 'Digest username missing' }
  const decoded = decodeExtValue(extended)
  if (decoded === undefined) return { reason: 'malformed Digest username*' }
  return { username: decoded }
}

function basicUser (text: string): Outcome {
  const b64 = trimOwsEnd(text)
  if (b64 === '' || !BASE64.test(b64)) return { reason: 'malformed Basic credentials' }
  const buf = Buffer.from(b64, 'base64')
  // Rejects encodings with stray trailing bits, which Node would silently accept.
  if (buf.toString('base64') !== b64) return { reason: 'malformed Basic credentials' }
  let pair: string
  try {
    pair = utf8.decode(buf)
  } catch {
    // RFC 7617 leaves the charset open unless announced; older clients send latin1.
    pair = buf.toString('latin1')
  }
  const colon = pair.indexOf(':')
  if (colon < 0) return { reason: 'malformed Basic credentials' }
  return { username: pair.slice(0, colon) }
}

function fromAuthorization (rawHeaders: string[]): Outcome {
  const values: string[] = []
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if (rawHeaders[i].toLowerCase() === 'authorization') values.push(rawHeaders[i + 1])
  }
  let outcome: Outcome
  for (const raw of values) {
    const m = SCHEME.exec(trimOws(raw))
    if (m === null) continue
    const scheme = m[1].toLowerCase()
    if (scheme !== 'digest' && scheme !== 'basic') continue
    // Two fields could name two servers, and a proxy in between may pick either.
    if (values.length > 1) return { reason: 'duplicated Authorization' }
    const rest = m[2] ?? ''
    outcome = scheme === 'digest' ? digestUser(rest) : basicUser(rest)
  }
  return outcome
}

function decodeQueryPart (text: string): string | undefined {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '))
  } catch {
    return undefined
  }
}

function fromQuery (url: string): Outcome {
  const q = url.indexOf('?')
  if (q < 0) return undefined
  const hash = url.indexOf('#', q)
  const query = url.slice(q + 1, hash < 0 ? undefined : hash)
  let found: string | undefined
  for (const part of query.split('&')) {
    const eq = part.indexOf('=')
    // Parameters that are not ours, even undecodable ones, are the app's business.
    if (decodeQueryPart(eq < 0 ? part : part.slice(0, eq)) !== 'rendezvous') continue
    const value = eq < 0 ? '' : decodeQueryPart(part.slice(eq + 1))
    if (value === undefined) return { reason: 'malformed rendezvous parameter' }
    if (value === '') return { reason: 'empty rendezvous parameter' }
    // IDs match case-insensitively, so "A" and "a" name the same server.
    if (found !== undefined && found.toLowerCase() !== value.toLowerCase()) {
      return { reason: 'repeated rendezvous parameter' }
    }
    found ??= value
  }
  return found === undefined ? undefined : { username: found }
}

/**
 * Finds what, if anything, in a mobile client's request names a hidden
 * server (docs/protocol.md, the mobile side). The user name is returned as sent: the caller
 * validates and canonicalises it, because a bad ID is a 404, not a 400.
 */
export function readCredential (input: { rawHeaders: string[], url: string, upgrade: boolean }): Credential {
  const header = fromAuthorization(input.rawHeaders)
  if (header !== undefined && 'reason' in header) return { kind: 'invalid', reason: header.reason }
  if (header !== undefined && header.username === '') return { kind: 'invalid', reason: 'empty user name' }
  // Browsers cannot set Authorization on a WebSocket, hence the query; on
  // anything else the parameter belongs to the app.
  const query = input.upgrade ? fromQuery(input.url) : undefined
  if (query !== undefined && 'reason' in query) return { kind: 'invalid', reason: query.reason }
  if (header !== undefined) {
    if (query !== undefined && query.username.toLowerCase() !== header.username.toLowerCase()) {
      return { kind: 'invalid', reason: 'conflicting IDs' }
    }
    return { kind: 'user', username: header.username, source: 'authorization' }
  }
  if (query !== undefined) return { kind: 'user', username: query.username, source: 'query' }
  return { kind: 'none' }
}
