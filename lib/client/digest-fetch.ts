import { createHash, randomBytes } from 'node:crypto'

// Any fetch: the global one, or undici's with its own Request/Response classes and a dispatcher.
type AnyFetch = (input: any, init?: any) => Promise<any>

export interface RendezvousFetchOptions<F extends AnyFetch = typeof fetch> {
  /** The hidden server's ID, sent as the Digest user name. */
  id: string
  /** The fetch to wrap. Default: the global fetch, looked up at call time. */
  fetch?: F
  /** Send the credential with the first request instead of waiting for a 401. */
  preemptive?: boolean
}

interface Challenge {
  realm: string
  nonce: string
  opaque?: string
  qop?: string
  algorithm?: string
  stale?: string
}

interface ResponseLike {
  status: number
  headers: { get: (name: string) => string | null }
  arrayBuffer: () => Promise<unknown>
}

interface RequestLike {
  url: string
  method: string
  headers: Iterable<[string, string]>
  clone: () => RequestLike
}

// The rendezvous never checks the nonce, so one per origin serves every later request, saving a round trip.
const MAX_CACHED_ORIGINS = 64

/**
 * Wraps `fetch` so that a rendezvous server's Digest challenge is answered
 * with the ID as the user name (protocol step 4). The answer is a real
 * RFC 7616 response over an empty password.
 */
export function createRendezvousFetch<F extends AnyFetch = typeof fetch> (opts: RendezvousFetchOptions<F>): F {
  const challenges = new Map<string, Challenge & { nc: number }>()

  const wrapped = async (input: unknown, init: Record<string, unknown> = {}): Promise<unknown> => {
    const doFetch: AnyFetch = opts.fetch ?? globalThis.fetch
    const target = describe(input, init)
    if (target.headers.has('authorization')) return await doFetch(input, init)

    const cached = challenges.get(target.url.origin)
    const first = cached ?? (opts.preemptive === true ? { realm: 'rendezvous', nonce: randomBytes(16).toString('hex'), qop: 'auth', nc: 0 } : undefined)
    const body = init.body
    const replayable = !isStream(body)
    const firstInput = isRequest(input) && replayable ? input.clone() : input
    const firstAuth = first === undefined ? undefined : answer(opts.id, first, ++first.nc, target, body)
    const res = await doFetch(firstInput, firstAuth === undefined ? init : withAuthorization(init, target.headers, firstAuth)) as ResponseLike

    if (res.status !== 401 || !replayable) return res
    const challenge = parseDigestChallenge(res.headers.get('www-authenticate'))
    if (challenge === undefined) return res
    // The same nonce refused again means the credential itself is refused: asking twice cannot help.
    if (first !== undefined && challenge.nonce === first.nonce && challenge.stale?.toLowerCase() !== 'true') return res
    const auth = answer(opts.id, challenge, 1, target, body)
    if (auth === undefined) return res
    await res.arrayBuffer().catch(() => {})
    remember(challenges, target.url.origin, { ...challenge, nc: 1 })
    return await doFetch(input, withAuthorization(init, target.headers, auth))
  }
  return wrapped as F
}

/** One request through a rendezvous: `init` carries the ID and, optionally, the fetch to use. */
export async function rendezvousFetch<F extends AnyFetch = typeof fetch> (
  input: Parameters<F>[0],
  init: NonNullable<Parameters<F>[1]> & RendezvousFetchOptions<F>
): Promise<Awaited<ReturnType<F>>> {
  const { id, fetch: inner, preemptive, ...rest } = init as RendezvousFetchOptions<F> & Record<string, unknown>
  return await createRendezvousFetch<F>({ id, fetch: inner, preemptive })(input, rest)
}

/** The Authorization value answering `challenge`, or undefined when no offered qop can be met. */
export function digestAuthorization (
  id: string,
  challenge: Challenge,
  req: { method: string, uri: string, body?: unknown },
  nc = 1,
  cnonce = randomBytes(16).toString('hex')
): string | undefined {
  const algorithm = (challenge.algorithm ?? 'MD5').toUpperCase()
  const sess = algorithm.endsWith('-SESS')
  const hashName = algorithm.startsWith('SHA-256') ? 'sha256' : 'md5'
  const H = (s: string | Uint8Array): string => createHash(hashName).update(s).digest('hex')
  const qop = chooseQop(challenge.qop, req.body)
  if (qop === null) return undefined
  const ncText = nc.toString(16).padStart(8, '0')
  let ha1 = H(`${id}:${challenge.realm}:`)
  if (sess) ha1 = H(`${ha1}:${challenge.nonce}:${cnonce}`)
  const ha2 = qop === 'auth-int' ? H(`${req.method}:${req.uri}:${H(hashableBody(req.body) ?? '')}`) : H(`${req.method}:${req.uri}`)
  const response = qop === undefined
    ? H(`${ha1}:${challenge.nonce}:${ha2}`)
    : H(`${ha1}:${challenge.nonce}:${ncText}:${cnonce}:${qop}:${ha2}`)
  const parts = [`username=${quote(id)}`, `realm=${quote(challenge.realm)}`, `nonce=${quote(challenge.nonce)}`, `uri=${quote(req.uri)}`]
  // Only echoed when the server named it, as RFC 7616 asks; hashName above already fell back to MD5.
  if (challenge.algorithm !== undefined) parts.push(`algorithm=${hashName === 'md5' ? (sess ? 'MD5-sess' : 'MD5') : (sess ? 'SHA-256-sess' : 'SHA-256')}`)
  parts.push(`response=${quote(response)}`)
  if (qop !== undefined) parts.push(`qop=${qop}`, `nc=${ncText}`, `cnonce=${quote(cnonce)}`)
  if (challenge.opaque !== undefined) parts.push(`opaque=${quote(challenge.opaque)}`)
  return 'Digest ' + parts.join(', ')
}

/** The Digest challenge among those in a WWW-Authenticate value (fetch joins repeated headers with commas). */
export function parseDigestChallenge (header: string | null): Challenge | undefined {
  if (header === null) return undefined
  const digest = parseChallenges(header).find((c) => c.scheme === 'digest')
  const { realm, nonce, opaque, qop, algorithm, stale } = digest?.params ?? {}
  if (realm === undefined || nonce === undefined) return undefined
  return { realm, nonce, opaque, qop, algorithm, stale }
}

function parseChallenges (header: string): Array<{ scheme: string, params: Record<string, string> }> {
  const out: Array<{ scheme: string, params: Record<string, string> }> = []
  const token = /[!#$%&'*+.^_`|~0-9A-Za-z-]+/y
  let i = 0
  while (i < header.length) {
    if (/[\s,]/.test(header[i]!)) { i++; continue }
    token.lastIndex = i
    const name = token.exec(header)?.[0]
    if (name === undefined) { i++; continue }
    i += name.length
    while (header[i] === ' ' || header[i] === '\t') i++
    if (header[i] !== '=' || out.length === 0) {
      out.push({ scheme: name.toLowerCase(), params: {} })
      continue
    }
    i++
    while (header[i] === ' ' || header[i] === '\t') i++
    let value = ''
    if (header[i] === '"') {
      for (i++; i < header.length && header[i] !== '"'; i++) value += header[i] === '\\' ? header[++i] ?? '' : header[i]
      i++
    } else {
      while (i < header.length && header[i] !== ',') value += header[i++]
      value = value.trim()
    }
    out.at(-1)!.params[name.toLowerCase()] ??= value
  }
  return out
}

function answer (id: string, challenge: Challenge, nc: number, target: Target, body: unknown): string | undefined {
  return digestAuthorization(id, challenge, { method: target.method, uri: target.url.pathname + target.url.search, body }, nc)
}

// undefined: the server offered no qop (RFC 2069 style); null: it offered only ones we cannot meet.
function chooseQop (offered: string | undefined, body: unknown): 'auth' | 'auth-int' | undefined | null {
  if (offered === undefined) return undefined
  const list = offered.split(',').map((q) => q.trim().toLowerCase())
  if (list.includes('auth')) return 'auth'
  if (list.includes('auth-int') && hashableBody(body) !== undefined) return 'auth-int'
  return null
}

// auth-int hashes the body, which only works for a body we hold in memory.
function hashableBody (body: unknown): string | Uint8Array | undefined {
  if (body === undefined || body === null) return ''
  if (typeof body === 'string') return body
  if (body instanceof ArrayBuffer) return new Uint8Array(body)
  if (ArrayBuffer.isView(body)) return new Uint8Array(body.buffer, body.byteOffset, body.byteLength)
  return undefined
}

function quote (value: string): string {
  return '"' + value.replace(/["\\]/g, '\\$&') + '"'
}

type HeadersInput = ConstructorParameters<typeof Headers>[0]

interface Target {
  url: URL
  method: string
  headers: Headers
}

// Mirrors fetch's own rule: init.headers, when given, replace a Request's headers.
function describe (input: unknown, init: Record<string, unknown>): Target {
  if (isRequest(input)) {
    return {
      url: new URL(input.url),
      method: String(init.method ?? input.method).toUpperCase(),
      headers: new Headers((init.headers ?? [...input.headers]) as HeadersInput)
    }
  }
  return {
    url: new URL(String(input)),
    method: String(init.method ?? 'GET').toUpperCase(),
    headers: new Headers(init.headers as HeadersInput)
  }
}

function withAuthorization (init: Record<string, unknown>, headers: Headers, authorization: string): Record<string, unknown> {
  const merged = new Headers(headers)
  merged.set('authorization', authorization)
  // The rendezvous splices the connection that carries this request to the hidden server for good. Back in
  // fetch's pool, which is shared per origin, it would carry other IDs' requests, and the app's own, to this
  // hidden server; so it closes after the answer, unless the caller chose otherwise.
  if (!merged.has('connection')) merged.set('connection', 'close')
  // Plain pairs: a Headers object of one fetch implementation is not always accepted by another.
  return { ...init, headers: [...merged] }
}

function isRequest (input: unknown): input is RequestLike {
  return typeof input === 'object' && input !== null && !(input instanceof URL) && typeof (input as RequestLike).url === 'string' && typeof (input as RequestLike).clone === 'function'
}

// A stream can be sent once only, so a request carrying one cannot be retried after a 401.
function isStream (body: unknown): boolean {
  if (typeof body !== 'object' || body === null) return false
  return typeof (body as { getReader?: unknown }).getReader === 'function' || Symbol.asyncIterator in body
}

function remember (map: Map<string, Challenge & { nc: number }>, origin: string, challenge: Challenge & { nc: number }): void {
  map.delete(origin)
  map.set(origin, challenge)
  if (map.size > MAX_CACHED_ORIGINS) map.delete(map.keys().next().value!)
}
