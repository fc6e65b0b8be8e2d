import { RendezvousOptionError } from './errors'
import { shown } from './option-value'
import { MAX_TIMER_MS, WITHIN_TIMER_LIMIT } from './timer-limit'
import { isKeepAliveDelay, WITHIN_KEEPALIVE_LIMIT } from './keepalive-limit'

/*
 * The checks of the numeric options: durations, counts and the limits
 * objects. A wrong value is refused by name when the plugin is registered,
 * never read as "use the default" or left to misbehave later.
 */

// The options that become timers, in ms (keepAliveInitialDelay, the kernel's, has a range of its own).
const TIMERS = new Set(['waitTimeout', 'connectTimeout', 'spliceIdleTimeout', 'lingerTimeout', 'handshakeTimeout', 'closeGracePeriod',
  'authFailures.window', 'authFailures.coolOff', 'authFailures.roomWait', 'unknownIdFailures.window', 'unknownIdFailures.coolOff'])

/**
 * The widest token skew, in seconds, the plugin and `serve --token-skew`
 * alike. A wider one is no clock difference but a second lifetime for
 * tokens: one captured in transit would be good that long at any relay
 * not sharing the replay cache, which must also keep each token that long.
 */
export const MAX_TOKEN_SKEW_S = 86_400

// Durations for which 0 is no setting: a CONNECT given 0 ms to authenticate gets 408 whenever its token check
// takes any time at all (an async verifyToken, a replay cache in Redis), while /readyz still says ready.
const ABOVE_ZERO = new Map<string, string>([
  ['connectTimeout', '0 answers 408 to every CONNECT whose token check takes any time, such as an async verifyToken or a replay cache in Redis']
])

function nonNegative (name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new RendezvousOptionError(`${name} must be a non-negative number, got ${shown(value)}`)
  }
  if (TIMERS.has(name) && value > MAX_TIMER_MS) {
    throw new RendezvousOptionError(`${name} must be ${WITHIN_TIMER_LIMIT}, got ${String(value)}`)
  }
  if (value === 0 && ABOVE_ZERO.has(name)) {
    throw new RendezvousOptionError(`${name} must be more than 0 ms (${ABOVE_ZERO.get(name)!}), got 0`)
  }
  // 0 asks for the system's delay on purpose.
  if (name === 'keepAliveInitialDelay' && value !== 0 && !isKeepAliveDelay(value)) {
    throw new RendezvousOptionError(`${name} must be 0 (the system's) or ${WITHIN_KEEPALIVE_LIMIT}, got ${String(value)}`)
  }
  return value
}

// 0 would refuse every token or every CONNECT while /readyz still says ready: no cap here means none is wanted,
// which these must never be.
const POSITIVE_INTEGERS = new Set<string>(['replayCacheSize', 'maxParked', 'maxParkedPerId', 'maxPendingConnects'])
// Things counted one by one: 2.5 connections would be taken as 3 by some comparisons and as 2 by others.
const COUNTS = new Set<string>(['maxWaitersPerId', 'maxWaiters', 'maxConnectionsPerAddress', 'maxConnections', 'maxSpliced', 'maxWaitBuffer',
  'authFailures.perPair', 'authFailures.perAddress', 'authFailures.perIdTotp', 'unknownIdFailures.perAddress'])

function positiveInteger (name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new RendezvousOptionError(`${name} must be a positive integer, got ${shown(value)}`)
  }
  return value
}

// Prefix lengths: an IPv6 subnet of 0 bits would put every IPv6 client under one budget.
const PREFIX_LENGTHS = new Set<string>(['ipv6Subnet'])

function prefixLength (name: string, value: unknown, fallback: number): number {
  const resolved = positiveInteger(name, value, fallback)
  if (resolved > 128) throw new RendezvousOptionError(`${name} must be a prefix length from 1 to 128, got ${String(resolved)}`)
  return resolved
}

// v1 tokens carry whole unix seconds, and serve takes whole seconds up to MAX_TOKEN_SKEW_S.
function tokenSkew (name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_TOKEN_SKEW_S) {
    throw new RendezvousOptionError(`${name} must be a whole number of seconds from 0 to ${MAX_TOKEN_SKEW_S} (a day: a wider skew is no clock difference but a second lifetime for every token), got ${shown(value)}`)
  }
  return value
}

export function limit (name: string, value: unknown, fallback: number): number {
  if (POSITIVE_INTEGERS.has(name)) return positiveInteger(name, value, fallback)
  if (PREFIX_LENGTHS.has(name)) return prefixLength(name, value, fallback)
  if (name === 'tokenSkew') return tokenSkew(name, value, fallback)
  const resolved = nonNegative(name, value, fallback)
  if (COUNTS.has(name) && !Number.isInteger(resolved)) {
    throw new RendezvousOptionError(`${name} must be a whole number, got ${String(resolved)}`)
  }
  return resolved
}

/**
 * One ID's share of a pool (replayCachePerId of replayCacheSize,
 * maxSplicedPerId of maxSpliced), or one address's of an ID's waiting places
 * (maxWaitersPerAddress of maxWaitersPerId): a whole number, 0 for none. By default a
 * quarter of the pool, at least 1 while the pool is capped. A share larger
 * than the pool, or of a pool with no cap, could never bind: refused, as it
 * would otherwise be taken for a protection that is not there.
 */
export function share (name: string, value: unknown, pool: number, poolName: string): number {
  if (value === undefined) return pool > 0 ? Math.max(1, Math.floor(pool / 4)) : 0
  const resolved = nonNegative(name, value, 0)
  if (!Number.isInteger(resolved)) throw new RendezvousOptionError(`${name} must be a whole number, got ${String(resolved)}`)
  if (resolved > 0 && pool === 0) throw new RendezvousOptionError(`${name} must be 0 while ${poolName} is 0 (nothing to share), got ${String(resolved)}`)
  if (resolved > pool) throw new RendezvousOptionError(`${name} must be at most ${poolName} (${String(pool)}), got ${String(resolved)}`)
  return resolved
}

// A string, a number or an array here would otherwise be read as "no limits given", and a misspelt key
// as that limit not given: either way the defaults would be used unsaid.
export function limitsObject<T extends object> (name: string, value: T | undefined, defaults: object, alsoKnown: string[] = []): Partial<T> {
  if (value === undefined) return {}
  const known = Object.keys(defaults)
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new RendezvousOptionError(`${name} must be an object with any of ${known.join(', ')}, got ${shown(value)}`)
  }
  const unknown = Object.keys(value).filter(key => !known.includes(key) && !alsoKnown.includes(key))
  if (unknown.length > 0) {
    throw new RendezvousOptionError(`${name} has no ${unknown.map(key => `'${key}'`).join(', ')}; it takes ${known.join(', ')}`)
  }
  return value
}

/**
 * A group of throttle limits (authFailures, unknownIdFailures): each key
 * checked by name, the default where none is given, and the window checked
 * against the group's `counters`.
 */
export function throttleLimits<T extends { window: number, coolOff: number }> (name: string, given: Partial<Record<keyof T, unknown>>, defaults: T, counters: Array<keyof T & string>): T {
  const resolved = { ...defaults }
  for (const key of Object.keys(defaults) as Array<keyof T & string>) {
    resolved[key] = limit(`${name}.${key}`, given[key], defaults[key] as number) as T[keyof T & string]
  }
  const counts = Object.fromEntries(counters.map(counter => [counter, resolved[counter] as number]))
  for (const duration of ['window', 'coolOff'] as const) durationFor(name, duration, resolved[duration], counts)
  return resolved
}

/**
 * A window of 0 counts nothing, and a cool-off of 0 refuses nothing (serve
 * refuses both): either would turn counters that are on off unsaid; a count
 * of 0 is the way to say so.
 */
function durationFor (name: string, duration: 'window' | 'coolOff', ms: number, counters: Record<string, number>): void {
  const on = Object.entries(counters).filter(([, n]) => n > 0).map(([counter]) => counter)
  if (ms === 0 && on.length > 0) {
    throw new RendezvousOptionError(`${name}.${duration} must be more than 0 ms while ${listed(on.map(c => `${name}.${c}`), 'or')} counts; to turn the throttle off, set ${listed(Object.keys(counters).map(c => `${name}.${c}`), 'and')} to 0`)
  }
}

function listed (names: string[], last: 'and' | 'or'): string {
  return names.length < 2 ? names.join('') : `${names.slice(0, -1).join(', ')} ${last} ${names[names.length - 1]!}`
}
