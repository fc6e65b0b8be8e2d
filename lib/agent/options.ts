import createError from '@fastify/error'
import type { X509Certificate } from 'node:crypto'
import type * as net from 'node:net'
import type * as tls from 'node:tls'
import { canonicalId, isValidSecret } from '../registry/ids'
import { caCertificates } from './certificates'
import { defaultSplicePath } from '../relay/native-addon'
import { openFileLimit } from '../open-file-limit'
import { MAX_TIMER_MS, WITHIN_TIMER_LIMIT } from '../timer-limit'
import { isKeepAliveDelay, WITHIN_KEEPALIVE_LIMIT } from '../keepalive-limit'
import type { LocalTarget } from './forward'

export interface RendezvousAgentOptions {
  /**
   * The rendezvous server, `https://host[:port]` (or `http://` behind a TLS-terminating proxy);
   * or several nodes of a cluster, across which the pool is spread.
   */
  url: string | URL | Array<string | URL>
  id: string
  /** The base32 secret provisioned with the ID. */
  secret: string
  /** The local service taken connections are relayed to, `http://127.0.0.1:PORT` or `https://...`. */
  to?: string | URL
  /** Trusted CA certificates for an https:// `to`. */
  toCa?: tls.SecureContextOptions['ca']
  /** Skips certificate verification of an https:// `to` (a backend with its own self-signed certificate). */
  toInsecure?: boolean
  /** Time allowed to reach `to` before the mobile client gets 504, in ms. Default 5000. */
  toConnectTimeout?: number
  /** An in-process server taken connections are handed to, instead of `to`. */
  server?: net.Server
  /** Connections kept parked at the rendezvous, 1 to MAX_POOL. Default 4. */
  pool?: number
  /** Trusted CA certificates for a rendezvous with a private CA. */
  ca?: tls.SecureContextOptions['ca']
  /** Skips certificate verification. Anyone on the path can then impersonate the rendezvous. */
  insecure?: boolean
  /** A parked connection is replaced after this long (jittered down by up to 20%), in ms: 0 (never), or MIN_MAX_AGE_MS or more. Default 300000. */
  maxAge?: number
  /** First backoff ceiling, in ms. Default 250. */
  backoffBase?: number
  /** Largest backoff delay, in ms. Default 30000. */
  backoffMax?: number
  /** Time allowed for dialling, TLS and the CONNECT answer, in ms. Default 15000. */
  connectTimeout?: number
  /** TCP keep-alive initial delay on parked connections, in ms. Default 30000. */
  keepAlive?: number
  /** While the rendezvous cannot be dialled, a bare TCP connect checks about this often whether it is back, in ms. 0 disables. Default 1000. */
  probeInterval?: number
  /** On close(), relayed connections get this long to finish before they are cut, in ms. Default 2000. */
  closeGrace?: number
}

export interface ResolvedAgentOptions {
  /** The first of `urls`. */
  url: URL
  /** Every rendezvous node given (cluster mode); the pool is spread across them. */
  urls: URL[]
  id: string
  secret: string
  target?: LocalTarget
  server?: net.Server
  pool: number
  ca?: tls.SecureContextOptions['ca']
  caFingerprints: string[]
  insecure: boolean
  maxAge: number
  backoffBase: number
  backoffMax: number
  connectTimeout: number
  keepAlive: number
  probeInterval: number
  closeGrace: number
  /** The process's open-file limit, read at start (undefined where unknown or unlimited): the pool is sized by it (descriptors.ts). */
  openFileLimit?: number
}

/**
 * The most connections one agent keeps parked. Far above what one hidden
 * server needs (the relay's own per-ID limit is 64 by default), and low
 * enough that a typo cannot exhaust this machine's file descriptors.
 */
export const MAX_POOL = 1024

/**
 * The shortest maxAge other than 0, in ms. Each replacement is a CONNECT
 * with a fresh token, which the relay keeps in its replay cache for about
 * four minutes: an age of a few ms re-parked hundreds of times a second. At
 * a second, a pool as large as the relay's default per-ID cap (64) holds
 * some 17,000 entries, well within one ID's share (125,000) of the default
 * cache. Also catches an age meant in seconds (maxAge: 300).
 */
export const MIN_MAX_AGE_MS = 1000

export function resolveAgentOptions (opts: RendezvousAgentOptions): ResolvedAgentOptions {
  const urls = (Array.isArray(opts.url) ? opts.url : [opts.url]).map(value => {
    const url = parseUrl(value, 'url')
    if (url.protocol !== 'https:' && url.protocol !== 'http:') bad('url', `must be https:// or http://, not ${url.protocol}`)
    // CONNECT names no path: one given would be ignored, which a user who meant it should hear now.
    if (url.pathname !== '/' || url.search !== '' || url.hash !== '') bad('url', `takes no path or query, only the scheme, host and port: ${url.origin}`)
    return url
  })
  const url = urls[0] ?? bad('url', 'must name at least one server')
  const id = canonicalId(String(opts.id ?? ''))
  if (id === undefined) bad('id', 'must be 1 to 128 characters of [A-Za-z0-9._~-]')
  const secret = normaliseSecret(String(opts.secret ?? ''))
  // Read now: once descriptors have run out, /proc/self/limits cannot be opened to say what the limit was.
  const limit = openFileLimit()
  if (!isValidSecret(secret)) bad('secret', 'must be base32 (RFC 4648) of 20 bytes or more')
  if ((opts.to === undefined) === (opts.server === undefined)) bad('to', 'or server must be given, not both', 'give exactly one of to and server')
  // Not coerced: 'yes' or 1 would read as false, and verification stay on with no word of why.
  const insecure = flag(opts.insecure, 'insecure')
  flag(opts.toInsecure, 'toInsecure')
  if (opts.insecure === true && opts.ca !== undefined) bad('insecure', 'contradicts ca', 'ca and insecure contradict each other')
  if (opts.toInsecure === true && opts.toCa !== undefined) bad('toInsecure', 'contradicts toCa', 'toCa and toInsecure contradict each other')
  // Read when each pair is relayed: checked now, so that a bad value fails the start and not a relay.
  try {
    defaultSplicePath()
  } catch (err) {
    throw new BadAgentOption((err as Error).message)
  }
  return {
    url,
    urls,
    id,
    secret,
    target: opts.to === undefined ? undefined : localTarget(opts.to, opts, limit),
    server: opts.server,
    pool: count(opts.pool, 'pool', 4, 1, MAX_POOL),
    ...trusted(opts.ca),
    insecure,
    maxAge: opts.maxAge === 0 ? 0 : duration(opts.maxAge, 'maxAge', 300_000, MIN_MAX_AGE_MS, `must be 0 (never) or an integer of at least ${MIN_MAX_AGE_MS}`),
    backoffBase: duration(opts.backoffBase, 'backoffBase', 250, 1),
    backoffMax: duration(opts.backoffMax, 'backoffMax', 30_000, 1),
    connectTimeout: duration(opts.connectTimeout, 'connectTimeout', 15_000, 1),
    keepAlive: keepAliveDelay(opts.keepAlive),
    probeInterval: duration(opts.probeInterval, 'probeInterval', 1000, 0),
    closeGrace: duration(opts.closeGrace, 'closeGrace', 2000, 0),
    openFileLimit: limit
  }
}

// Secrets get copied from otpauth URIs and password managers: forgive case, padding and spaces.
function normaliseSecret (value: string): string {
  return value.replace(/[\s=]/g, '').toUpperCase()
}

function localTarget (value: string | URL, opts: RendezvousAgentOptions, openFiles: number | undefined): LocalTarget {
  const url = parseUrl(value, 'to')
  const secure = url.protocol === 'https:'
  if (!secure && url.protocol !== 'http:') bad('to', `must be an http:// or https:// URL, not ${url.protocol}`)
  if (url.pathname !== '/' || url.search !== '') bad('to', 'names a service, not a path: use http://HOST:PORT')
  // Blames the trust option, not `to`, so that the CLI names the flag the user typed (--to-ca, --to-insecure).
  if (!secure && (opts.toCa !== undefined || opts.toInsecure === true)) bad(opts.toCa !== undefined ? 'toCa' : 'toInsecure', `applies only to an https:// local service, not ${url.protocol}//`)
  return {
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: url.port === '' ? (secure ? 443 : 80) : Number(url.port),
    tls: secure ? { ca: certificates(opts.toCa, 'toCa')?.map(String), insecure: opts.toInsecure === true } : undefined,
    connectTimeout: duration(opts.toConnectTimeout, 'toConnectTimeout', 5000, 1),
    openFileLimit: openFiles
  }
}

// One PEM string per certificate, so OpenSSL trusts exactly those the fingerprints name.
function trusted (ca: RendezvousAgentOptions['ca']): Pick<ResolvedAgentOptions, 'ca' | 'caFingerprints'> {
  const certs = certificates(ca, 'ca')
  return { ca: certs?.map(String), caFingerprints: certs?.map((c) => c.fingerprint256) ?? [] }
}

function certificates (ca: RendezvousAgentOptions['ca'], option: 'ca' | 'toCa'): X509Certificate[] | undefined {
  try {
    return caCertificates(ca, option)
  } catch (err) {
    return bad(option, (err as Error).message.slice(option.length + 1))
  }
}

function parseUrl (value: string | URL, name: 'url' | 'to'): URL {
  let url: URL
  try {
    url = new URL(String(value))
  } catch {
    return bad(name, `is not a URL: ${String(value)}`)
  }
  // Port 0 dials nothing: every attempt would fail, the agent retrying for ever (url) or answering every client 502 (to).
  if (url.port === '0') return bad(name, `has port 0, which no server listens on: ${String(value)}`)
  return url
}

function count (value: number | undefined, name: keyof RendezvousAgentOptions, fallback: number, min: number, max?: number, problem?: string): number {
  if (value === undefined) return fallback
  if (Number.isSafeInteger(value) && value >= min && value <= (max ?? Infinity)) return value
  return bad(name, problem ?? (max === undefined ? `must be an integer of at least ${min}` : `must be an integer from ${min} to ${max}`))
}

function flag (value: boolean | undefined, name: keyof RendezvousAgentOptions): boolean {
  if (value === undefined || typeof value === 'boolean') return value === true
  return bad(name, `must be true or false, got ${typeof value === 'string' ? JSON.stringify(value) : String(value)}`)
}

// In ms, and each becomes a timer (keepAlive the socket's): past Node's limit one fires after 1 ms, re-parking or answering 504 at once.
function duration (value: number | undefined, name: keyof RendezvousAgentOptions, fallback: number, min: number, problem?: string): number {
  if (typeof value === 'number' && value > MAX_TIMER_MS) return bad(name, `must be ${WITHIN_TIMER_LIMIT}, got ${String(value)}`)
  return count(value, name, fallback, min, undefined, problem)
}

function keepAliveDelay (value: number | undefined): number {
  if (value === undefined) return 30_000
  if (Number.isSafeInteger(value) && isKeepAliveDelay(value)) return value
  return bad('keepAlive', `must be an integer ${WITHIN_KEEPALIVE_LIMIT}, got ${String(value)}`)
}

const BadAgentOption = createError('FST_RENDEZVOUS_AGENT_BAD_OPTION', 'RendezvousAgent: %s', 500, TypeError)

/**
 * A RendezvousAgent option that cannot be used. `option` names it and
 * `problem` says what is wrong with it, so that a caller with other names
 * for the options (the CLI's flags) can say it in its own words.
 */
export class AgentOptionError extends BadAgentOption {
  readonly option: keyof RendezvousAgentOptions
  readonly problem: string
  constructor (option: keyof RendezvousAgentOptions, problem: string, message = `${option} ${problem}`) {
    super(message)
    this.option = option
    this.problem = problem
  }
}

function bad (option: keyof RendezvousAgentOptions, problem: string, message?: string): never {
  throw new AgentOptionError(option, problem, message)
}
