import { isIP } from 'node:net'
import { NotAllowed } from './config'
import { REDIS_DB_RULE, redisDbProblem } from '../cluster/redis-url'

/** Parsers of option values for the config tables: each returns the value or throws what is allowed. */

export const text = (raw: string): string => {
  if (raw.trim() === '') throw new NotAllowed('a non-empty value')
  return raw
}

export const flag = (raw: string): boolean => raw === 'true'

/*
 * Numbers are written in plain decimal digits, a fraction allowed where
 * seconds take one. Number() alone would also read 0x10, 1e3, Infinity, +5
 * and " 5", which some flags took and others refused.
 */
const WHOLE = /^\d+$/
const DECIMAL = /^\d+(\.\d+)?$/

export function integer (min: number, max: number): (raw: string) => number {
  return raw => {
    const n = Number(raw)
    if (!WHOLE.test(raw) || n < min || n > max) throw new NotAllowed(`an integer from ${min} to ${max}`)
    return n
  }
}

export interface SecondsRange {
  /** 0 is allowed (and means what the option says: off, never, at once). */
  zero?: boolean
  /** The least other than 0. Default: anything above 0. */
  min?: number
  /** Default 86400. */
  max?: number
  /** Said after the maximum: why it is there. */
  maxWhy?: string
}

/** Seconds on the command line, milliseconds inside. */
export function seconds (opts: SecondsRange = {}): (raw: string) => number {
  const max = opts.max ?? 86_400
  const min = opts.min ?? 0
  const upTo = `${max}${opts.maxWhy === undefined ? '' : ` (${opts.maxWhy})`}`
  const range = min > 0
    ? `from ${min} to ${upTo}${opts.zero === true ? ' or 0' : ''}`
    : `${opts.zero === true ? 'from 0 to' : 'above 0 and at most'} ${upTo}`
  return raw => {
    const n = DECIMAL.test(raw) ? Number(raw) : NaN
    if (Number.isNaN(n) || n > max || (n === 0 ? opts.zero !== true : n < min)) {
      throw new NotAllowed(`a number of seconds ${range}, in decimal digits such as 30 or 2.5`)
    }
    // A value above 0 is never 0 ms, which some options read as off or never.
    return n === 0 ? 0 : Math.max(1, Math.round(n * 1000))
  }
}

export function oneOf<const T extends string> (choices: readonly T[]): (raw: string) => T {
  return raw => {
    if (!(choices as readonly string[]).includes(raw)) throw new NotAllowed(`one of ${choices.join(', ')}`)
    return raw as T
  }
}

// Two flags on one path are refused by serve's argument check (distinctRoutes), which names both.
export const urlPath = (raw: string): string => {
  if (!/^\/[A-Za-z0-9._~\-/]+$/.test(raw)) throw new NotAllowed('a path such as /metrics, other than /')
  return raw
}

export interface HostPort { host: string, port: number }

/** HOST:PORT, with an IPv6 host in brackets. */
export const hostPort = (raw: string): HostPort => {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(raw.trim())
  const port = Number(m?.[3])
  if (m === null || port > 65535) throw new NotAllowed('HOST:PORT, such as 127.0.0.1:9090 or [::1]:9090')
  return { host: m[1] ?? m[2], port }
}

/** The Digest realm goes inside a quoted string of the challenge. */
export const realm = (raw: string): string => {
  if (!/^[\x20-\x7e]+$/.test(raw) || /["\\]/.test(raw)) throw new NotAllowed('printable ASCII without quotes or backslashes')
  return raw
}

/** A --tls-name: a DNS name (a leading `*.` allowed) or an IP address. */
export const tlsName = (name: string): string => {
  const dns = /^(\*\.)?(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?$/
  if (isIP(name) === 0 && (name.length > 253 || !dns.test(name))) throw new NotAllowed('a DNS name or an IP address')
  return name.replace(/\.$/, '').toLowerCase()
}

const REDIS_URL = 'a redis:// or rediss:// URL that parses (a port up to 65535, an IPv6 address in brackets, special characters of the password %-encoded)'

/**
 * A Redis URL as ioredis reads it: with WHATWG's URL parser, then its user
 * and password %-decoded. One that fails either (a port past 65535, a stray
 * bracket, a lone %) would otherwise fail only when serve connects, as an
 * unexpected "Invalid URL" or "URI malformed".
 */
export const redisUrl = (raw: string): string => {
  // ioredis takes the scheme in any case, as URLs may write it.
  if (!/^rediss?:\/\//i.test(raw)) throw new NotAllowed('a redis:// or rediss:// URL')
  if (!URL.canParse(raw)) throw new NotAllowed(REDIS_URL)
  const { username, password } = new URL(raw)
  try {
    decodeURIComponent(username)
    decodeURIComponent(password)
  } catch {
    throw new NotAllowed(REDIS_URL)
  }
  if (redisDbProblem(raw) !== undefined) throw new NotAllowed(`a redis:// or rediss:// URL ${REDIS_DB_RULE}`)
  return raw
}
