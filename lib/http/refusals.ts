import { randomBytes } from 'node:crypto'
import { STATUS_CODES } from 'node:http'
import type { Duplex } from 'node:stream'
import { DEFAULT_LINGER_MS, lingerClose } from './linger'

/** The hidden server's go-ahead (docs/protocol.md); nothing else may follow it. */
export const CONNECT_OK: Buffer = Buffer.from('HTTP/1.1 200 OK\r\n\r\n', 'latin1')

export interface Refusal {
  status: number
  /** Body text; defaults to the reason phrase. A newline is appended. */
  message?: string
  /** Seconds, rounded up. */
  retryAfter?: number
  headers?: Record<string, string>
  /** The answer to a HEAD request: the same head, and no body (RFC 9110 §9.3.2). */
  headOnly?: boolean
}

/** The body of every refusal of an HTTP/1.1 request without Host, on every listener. */
export const NEEDS_HOST = 'an HTTP/1.1 request needs exactly one Host header'

/** How many Host fields a head carries: Node keeps only the first in `headers`, so a second shows only here. */
export function hostCount (rawHeaders: string[]): number {
  let n = 0
  for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i].toLowerCase() === 'host') n++
  return n
}

/**
 * Whether a request is one RFC 9112 §3.2 says to refuse for lacking Host:
 * HTTP/1.1 without one (HTTP/1.0 needs none). Node makes this check itself
 * (its `requireHostHeader`), answering an empty 400 that nothing counts or
 * logs; our listeners turn it off and make it here.
 */
export function lacksHost (req: { httpVersionMajor: number, httpVersionMinor: number, rawHeaders: string[] }): boolean {
  return req.httpVersionMajor === 1 && req.httpVersionMinor >= 1 && hostCount(req.rawHeaders) === 0
}

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
const BAD_VALUE = /[\r\n\0]/
// These decide framing and the close; letting a caller override them would
// turn a refusal into something the peer waits on.
const RESERVED = new Set(['content-length', 'connection', 'transfer-encoding'])

/** A refusal's parts, as refusalBytes writes them. */
interface RefusalParts {
  status: number
  phrase: string
  fields: Array<[string, string]>
  body: Buffer
}

function refusalParts (r: Refusal): RefusalParts {
  const { status } = r
  if (!Number.isInteger(status) || status < 100 || status > 599) {
    throw new RangeError(`invalid status ${status}`)
  }
  const phrase = STATUS_CODES[status] ?? 'Unknown'
  const body = Buffer.from(`${r.message ?? phrase}\n`, 'utf8')
  const fields = new Map<string, [string, string]>()
  const set = (name: string, value: string): void => { fields.set(name.toLowerCase(), [name, value]) }
  set('Content-Type', 'text/plain; charset=utf-8')
  set('Content-Length', String(body.length))
  set('Connection', 'close')
  if (r.retryAfter !== undefined) {
    if (!Number.isFinite(r.retryAfter) || r.retryAfter < 0) throw new RangeError(`invalid Retry-After ${r.retryAfter}`)
    set('Retry-After', String(Math.ceil(r.retryAfter)))
  }
  for (const [name, value] of Object.entries(r.headers ?? {})) {
    if (!HEADER_NAME.test(name)) throw new TypeError(`invalid header name ${JSON.stringify(name)}`)
    if (RESERVED.has(name.toLowerCase())) throw new TypeError(`header ${name} cannot be set on a refusal`)
    if (BAD_VALUE.test(value)) throw new TypeError(`header ${name} contains a line break`)
    set(name, value)
  }
  return { status, phrase, fields: [...fields.values()], body }
}

export function refusalBytes (r: Refusal): Buffer {
  const { status, phrase, fields, body } = refusalParts(r)
  let head = `HTTP/1.1 ${status} ${phrase}\r\n`
  for (const [name, value] of fields) head += `${name}: ${value}\r\n`
  head += '\r\n'
  return r.headOnly === true ? Buffer.from(head, 'latin1') : Buffer.concat([Buffer.from(head, 'latin1'), body])
}

/**
 * Answers and closes a raw socket (docs/protocol.md: never a silent hang),
 * with a lingering close: the peer may still be sending what is refused.
 */
export function refuse (socket: Duplex, r: Refusal, lingerMs = DEFAULT_LINGER_MS): void {
  if (socket.destroyed) return
  const bytes = refusalBytes(r)
  if (!socket.writable) {
    // Someone already ended it: nothing can be answered any more.
    socket.destroy()
    return
  }
  lingerClose(socket, lingerMs, bytes)
}

function quote (text: string): string {
  return `"${text.replace(/[\\"]/g, '\\$&')}"`
}

/** The mobile side's WWW-Authenticate value, with a fresh nonce each time. */
export function challengeHeader (realm: string): string {
  if (BAD_VALUE.test(realm)) throw new TypeError('realm contains a line break')
  const nonce = randomBytes(16).toString('hex')
  const opaque = randomBytes(16).toString('hex')
  return `Digest realm=${quote(realm)}, qop="auth, auth-int", nonce="${nonce}", opaque="${opaque}"`
}
