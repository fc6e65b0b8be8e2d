import * as net from 'node:net'
import * as tls from 'node:tls'
import { parseRetryAfter } from './backoff'
import { rejection, trustOptions } from './certificates'
import type { TlsReuse } from './tls-reuse'
import { PLAIN_ON_TLS } from '../relay/plain-on-tls'

export interface ParkOptions {
  /** The rendezvous server: https: verifies its certificate, http: is plain TCP. */
  url: URL
  /** The canonical ID. */
  id: string
  /** A fresh one-time token. Never logged: it is a credential until the server spends it. */
  token: string
  ca?: tls.SecureContextOptions['ca']
  insecure?: boolean
  /** SHA-256 fingerprints of the `ca` certificates, named when the server's certificate is rejected. */
  expected?: string[]
  /** Time allowed from dialling to the end of the answer's head, in ms. */
  timeout: number
  /** TCP keep-alive initial delay, in ms. */
  keepAlive: number
  signal?: AbortSignal
  /** The agent's shared secure context and session tickets; without it, each connection builds its own and resumes nothing. */
  reuse?: TlsReuse
  /** A plain CONNECT to this URL parked before: it does not serve TLS, so a close without a byte is not that mistake. */
  parkedBefore?: boolean
}

export interface Parked {
  socket: net.Socket
  /** Bytes that arrived after the 200's head: the start of a mobile client's request. */
  rest: Buffer
}

export interface HandshakeErrorDetails {
  status?: number
  retryAfter?: number
  headers?: Record<string, string>
  body?: string
}

export class HandshakeError extends Error {
  readonly code: string
  readonly status?: number
  /** The answer's Retry-After, in ms. */
  readonly retryAfter?: number
  readonly headers: Record<string, string>
  /** The start of the refusal's short body, as far as it came with the head. */
  readonly body: string

  constructor (message: string, code: string, details: HandshakeErrorDetails = {}) {
    super(message)
    this.name = 'HandshakeError'
    this.code = code
    this.status = details.status
    this.retryAfter = details.retryAfter
    this.headers = details.headers ?? {}
    this.body = details.body ?? ''
  }
}

/** The rendezvous's 503 for a lot that holds no more connections for this ID. */
export function isLotFull (err: HandshakeError): boolean {
  return err.status === 503 && /too many parked connections/i.test(err.body)
}

/**
 * Said once when the lot fills. The relay's answer is the same whether its
 * limit for this ID or its limit in all was reached, so this names neither.
 */
export function lotFullError (refusal: HandshakeError, parked: number, pool: number, wait: number): HandshakeError {
  const body = refusal.body === '' ? '' : ` (${refusal.body.split('\n', 1)[0]!.trim()})`
  return new HandshakeError(
    `lot full: the rendezvous refused more parked connections${body}; this agent keeps the ${parked} it has ` +
    `of --pool ${pool} and tries one more in ${(wait / 1000).toFixed(1)} s, then after each Retry-After until the pool is full`,
    'RENDEZVOUS_LOT_FULL', { status: 503, retryAfter: wait })
}

// A real answer is a status line and perhaps a few headers; anything this long is not our server.
const MAX_HEAD = 16 * 1024

/**
 * Dials the rendezvous, sends the CONNECT and resolves once the server has
 * answered 200. Rejects with a HandshakeError for any other answer, or with
 * the socket's own error (TLS verification included: the CONNECT, and so the
 * token, is only written after the certificate was accepted).
 */
export function openParked (opts: ParkOptions): Promise<Parked> {
  return new Promise((resolve, reject) => {
    const { socket, readyEvent } = dial(opts)
    let head: Buffer = Buffer.alloc(0)
    let settled = false

    const timer = setTimeout(() => {
      fail(new HandshakeError(`no answer from the rendezvous within ${opts.timeout} ms`, 'RENDEZVOUS_HANDSHAKE_TIMEOUT'))
    }, opts.timeout)
    const onAbort = (): void => fail(new HandshakeError('aborted', 'ABORT_ERR'))
    if (opts.signal?.aborted === true) return fail(new HandshakeError('aborted', 'ABORT_ERR'))
    opts.signal?.addEventListener('abort', onAbort, { once: true })

    function settle (): void {
      settled = true
      clearTimeout(timer)
      opts.signal?.removeEventListener('abort', onAbort)
      socket.pause()
      socket.off('data', onData)
      socket.off('close', onClose)
    }

    // Stays attached after success: a no-op by then, it keeps an error that
    // lands before the caller's own listener from crashing the process.
    function fail (err: Error): void {
      if (settled) return
      settle()
      socket.destroy()
      reject(err)
    }

    function onClose (): void {
      // A TLS server closes on a plain CONNECT without a byte: the usual cause is an http:// URL for a relay that serves TLS.
      // Not once the same URL parked: then it is an outage, such as a layer-4 proxy whose relay is down.
      const hint = !(socket instanceof tls.TLSSocket) && head.length === 0 && opts.parkedBefore !== true ? `; if it serves TLS (serve without --no-tls), use https://${opts.url.host}` : ''
      fail(new HandshakeError(`the rendezvous closed the connection before answering${hint}`, 'RENDEZVOUS_CLOSED_EARLY'))
    }

    function onData (chunk: Buffer): void {
      head = head.length === 0 ? chunk : Buffer.concat([head, chunk])
      const end = findHeadEnd(head)
      if (end === undefined) {
        if (head.length > MAX_HEAD) fail(new HandshakeError('the answer\'s head is too long', 'RENDEZVOUS_BAD_ANSWER'))
        return
      }
      const answer = parseHead(head.subarray(0, end.start).toString('latin1'))
      if (answer === undefined) {
        return fail(new HandshakeError('the answer is not HTTP', 'RENDEZVOUS_BAD_ANSWER'))
      }
      if (answer.status !== 200) {
        const body = head.subarray(end.after, end.after + 200).toString('utf8').trim()
        // A relay that serves TLS answers a plain CONNECT with this 400 (docs/protocol.md).
        const plainOnTls = !(socket instanceof tls.TLSSocket) && answer.status === 400 && body === PLAIN_ON_TLS
        // That body's words are the relay's version of the hint, which says what to do instead.
        const hint = plainOnTls ? `: it serves TLS on this port; use https://${opts.url.host}` : notRelayHint(answer.status)
        const why = plainOnTls ? '' : shortReason(head.subarray(end.after, end.after + MAX_REASON_BYTES), answer.reason, opts.token)
        return fail(new HandshakeError(
          `the rendezvous answered ${answer.status}${answer.reason === '' ? '' : ' ' + answer.reason}${why}${hint}`,
          'RENDEZVOUS_REFUSED',
          {
            status: answer.status,
            headers: answer.headers,
            retryAfter: parseRetryAfter(answer.headers['retry-after']),
            body
          }
        ))
      }
      // RFC 9110 §9.3.6 forbids both in a 2xx to CONNECT, and a relay's 200 carries neither: what follows is a
      // body, not a mobile client's request, and each one forwarded would be followed by another CONNECT at once.
      const framing = answer.headers['content-length'] !== undefined ? 'content-length' : answer.headers['transfer-encoding'] !== undefined ? 'transfer-encoding' : undefined
      if (framing !== undefined) {
        const named = framing === 'content-length' ? 'Content-Length' : 'Transfer-Encoding'
        return fail(new HandshakeError(
          `${opts.url.host} answered CONNECT with a body (200 with ${named}: ${answer.headers[framing]!.slice(0, 40)}): this is not a rendezvous (is --server the right address?)`,
          'RENDEZVOUS_NOT_A_RENDEZVOUS',
          { status: answer.status, headers: answer.headers }
        ))
      }
      settle()
      resolve({ socket, rest: head.subarray(end.after) })
    }

    socket.once(readyEvent, () => {
      // Verified here rather than by rejectUnauthorized, so the refusal can name what was presented.
      if (socket instanceof tls.TLSSocket && opts.insecure !== true && !socket.authorized) {
        opts.reuse?.forget(opts.url.host)
        return fail(rejection(socket, hostOf(opts.url), opts.expected ?? []))
      }
      socket.setKeepAlive(true, opts.keepAlive)
      socket.setNoDelay(true)
      socket.write(`CONNECT uuid:${opts.id}?response=${opts.token} HTTP/1.1\r\nHost: ${opts.url.host}\r\n\r\n`)
    })
    socket.on('data', onData)
    socket.on('error', (err) => fail(explained(err, opts.url)))
    socket.on('close', onClose)
  })
}

// A relay answers a CONNECT with 200 or a refusal of its own; these come from a web server, or from the relay's admin
// or metrics port. Still retried: a relay being upgraded behind a proxy may answer oddly for a while.
const NOT_RELAY_STATUSES = new Set([404, 405, 501])

function notRelayHint (status: number): string {
  if (status >= 200 && status < 300) return '; a rendezvous answers CONNECT with 200 only, so this may not be a rendezvous (is --server the right address?)'
  return NOT_RELAY_STATUSES.has(status) ? '; this may not be a rendezvous (is --server the right address?)' : ''
}

// Enough of the body for the reason's first line; what follows it is not read.
const MAX_REASON_BYTES = 1024
const MAX_REASON_CHARS = 200
// C0 and C1 controls, and the format characters that reorder text (bidi overrides): a peer must not shape the log line.
const UNPRINTABLE = /[\p{Cc}\p{Cf}]/gu

/**
 * The refusal's own words, ` (too many failed attempts)`, from the first line
 * of its body as far as it came with the head; empty when there are none or
 * they only repeat the reason phrase. Whatever answered may echo the request
 * line (a web server's 404 naming the target), so the token is cut out.
 */
function shortReason (body: Buffer, phrase: string, token: string): string {
  const line = body.toString('utf8').trim().split(/\r?\n/, 1)[0]!
  const text = line.split(token).join('***').replace(UNPRINTABLE, '').trim().slice(0, MAX_REASON_CHARS)
  return text === '' || text.toLowerCase() === phrase.toLowerCase() ? '' : ` (${text})`
}

// OpenSSL's own text spans lines and names its source files; the usual cause is an https:// URL for a --no-tls relay.
function explained (err: Error, url: URL): Error {
  if ((err as NodeJS.ErrnoException).code !== 'ERR_SSL_WRONG_VERSION_NUMBER') return err
  return new HandshakeError(`${url.host} does not speak TLS on this port; if it is a relay run with --no-tls, use http://${url.host}`, 'RENDEZVOUS_NOT_TLS')
}

// URL keeps the brackets of an IPv6 literal; the socket APIs want it bare.
function hostOf (url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, '$1')
}

function dial (opts: ParkOptions): { socket: net.Socket, readyEvent: string } {
  const host = hostOf(opts.url)
  const secure = opts.url.protocol === 'https:'
  const port = opts.url.port === '' ? (secure ? 443 : 80) : Number(opts.url.port)
  if (!secure) return { socket: net.connect({ host, port }), readyEvent: 'connect' }
  const socket = tls.connect({
    host,
    port,
    // SNI must not carry an IP address (RFC 6066); the identity check still uses `host`.
    servername: net.isIP(host) === 0 ? host : undefined,
    ...(opts.reuse === undefined ? trustOptions(opts.ca) : opts.reuse.options(opts.url.host)),
    // Node still verifies and sets `authorized`; openParked refuses before a byte is written.
    rejectUnauthorized: false
  })
  opts.reuse?.remember(opts.url.host, socket, () => opts.insecure === true || socket.authorized)
  return { socket, readyEvent: 'secureConnect' }
}

function findHeadEnd (buf: Buffer): { start: number, after: number } | undefined {
  const crlf = buf.indexOf('\r\n\r\n')
  // Bare LF endings are tolerated, as Node's own client does.
  const lf = buf.indexOf('\n\n')
  if (crlf !== -1 && (lf === -1 || crlf < lf)) return { start: crlf, after: crlf + 4 }
  if (lf !== -1) return { start: lf, after: lf + 2 }
  return undefined
}

interface Answer {
  status: number
  reason: string
  headers: Record<string, string>
}

function parseHead (text: string): Answer | undefined {
  const [statusLine = '', ...lines] = text.split(/\r?\n/)
  // The original server wrote "HTTP/1.1 200" with no reason phrase.
  const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(statusLine)
  if (m === null) return undefined
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const colon = line.indexOf(':')
    if (colon <= 0) continue
    const name = line.slice(0, colon).trim().toLowerCase()
    headers[name] ??= line.slice(colon + 1).trim()
  }
  return { status: Number(m[1]), reason: (m[2] ?? '').trim(), headers }
}
