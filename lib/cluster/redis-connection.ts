import { Redis, type Cluster, type RedisOptions } from 'ioredis'
import { failureReporter, WARN_EVERY_MS } from './log-limit'
import { within } from '../deadline'
import { connectFailure } from './redis-url'

/** A client of either kind ioredis offers; Sentinel is a Redis client with sentinel options. */
export type RedisClient = Redis | Cluster

// The commands the cluster sends through a client, or through its duplicate (the subscriber);
// one it starts to send belongs here too, so that a given client is checked for it.
const COMMANDS = ['get', 'set', 'del', 'hget', 'hset', 'hdel', 'hgetall', 'eval', 'pttl', 'ping', 'scan', 'subscribe'] as const
type Command = (...args: never[]) => Promise<unknown>
// EventEmitter's own listener type: one taking never[] would not accept it.
type Listener = (...args: any[]) => void

/**
 * What the cluster needs of a client the application gives: its state, a
 * second connection of the same kind for pub/sub, events, and the commands
 * it sends. Written out rather than ioredis' class types, whose private
 * members accept only instances of the very copy of ioredis this package
 * has: a client of another major, such as the ioredis 6 that @fastify/redis 9
 * brings, has the same members and works alike. Redis, Cluster and Sentinel
 * clients of ioredis 5 and 6 all fit.
 */
export interface RedisClientLike extends Record<typeof COMMANDS[number], Command> {
  /** ioredis' connection state: 'wait' until connect(), 'ready' once commands can run. */
  readonly status: string
  duplicate: () => RedisClientLike
  connect: () => Promise<unknown>
  disconnect: () => void
  on: (event: string, listener: Listener) => unknown
  once: (event: string, listener: Listener) => unknown
  removeListener: (event: string, listener: Listener) => unknown
}

/** What the `redis` plugin option accepts: a URL, or a client the application already has. */
export type RedisSource = string | RedisClientLike

// Our own clients fail a command at once while disconnected rather than queue
// it: a CONNECT waiting on a queued command would hang instead of getting 503.
const OWN_CLIENT: RedisOptions = {
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  lazyConnect: true,
  retryStrategy: (times: number) => Math.min(100 * times, 2000),
  // ioredis closes by ending its socket and waiting this long for the server's FIN;
  // a Redis that never answers never sends one, and would hold a closing process open.
  disconnectTimeout: 200
}

export interface RedisConnection {
  /** Commands. */
  client: RedisClient
  /** Pub/sub only: a subscribed connection can run no other command. */
  subscriber: RedisClient
  /** Both connections are up, and Redis answered the last liveness ping in time. */
  reachable: () => boolean
  /** Both connections are up (ioredis says 'ready'), whether or not Redis answers. */
  connected: () => boolean
  /**
   * PINGs every `intervalMs`, each allowed `timeoutMs`. A Redis that hangs
   * (stopped, swapping) keeps its TCP connections open, and ioredis goes on
   * saying 'ready'; only an unanswered command shows it. `onChange` hears
   * each change of reachable() (with why, when it is lost), once per change.
   * `onFailure` hears why a connection fails (refused, a wrong password:
   * WRONGPASS, NOAUTH), each reason once a minute: ioredis retries quietly.
   */
  watchLiveness: (intervalMs: number, timeoutMs: number, onChange?: (up: boolean, why: string) => void, onFailure?: (why: string) => void) => void
  /**
   * Connects our own clients; a given client is left to its owner. Rejects
   * after `timeoutMs`: a Redis that accepts connections and never answers
   * (hung, or TLS spoken to a plain port) would otherwise be waited for forever.
   */
  connect: (timeoutMs: number) => Promise<void>
  close: () => Promise<void>
}

// Typed so that a member added to RedisClientLike must be added here too: isRedisClient() checks what the type promises.
const LIFECYCLE: Record<Exclude<keyof RedisClientLike, 'status' | typeof COMMANDS[number]>, true> = {
  duplicate: true, connect: true, disconnect: true, on: true, once: true, removeListener: true
}
const METHODS = [...Object.keys(LIFECYCLE), ...COMMANDS]

/** Whether `value` has every member RedisClientLike names. */
export function isRedisClient (value: unknown): value is RedisClientLike {
  if (typeof value !== 'object' || value === null) return false
  const client = value as Record<string, unknown>
  return typeof client.status === 'string' && METHODS.every(name => typeof client[name] === 'function')
}

/**
 * The client as this package's own ioredis types see it. A client of another
 * ioredis major has other class types but the same commands, and the
 * cluster's code is written against ioredis 5's.
 */
function asOwn (client: RedisClientLike): RedisClient {
  return client as unknown as RedisClient
}

/**
 * The servers a SCAN must walk: each master of a Redis Cluster, which holds
 * its share of the keys, or the one server. A Cluster is told by its nodes(),
 * not by its class: one of another ioredis copy is no instance of ours.
 */
export function scanTargets (client: RedisClient): RedisClient[] {
  return 'nodes' in client && typeof client.nodes === 'function' ? client.nodes('master') : [client]
}

export function openRedis (source: RedisSource): RedisConnection {
  const owned = typeof source === 'string'
  const client: RedisClient = owned ? new Redis(source, OWN_CLIENT) : asOwn(source)
  // The subscriber is always ours, even for a given client: subscribing would take that client away from its owner.
  const subscriber: RedisClient = owned ? new Redis(source, OWN_CLIENT) : client.duplicate()
  // Without a listener ioredis prints every reconnection failure; the state is reported through reachable().
  const quiet = (): void => {}
  client.on('error', quiet)
  subscriber.on('error', quiet)
  const ready = (c: RedisClient): Promise<void> => c.status === 'ready'
    ? Promise.resolve()
    : new Promise((resolve, reject) => {
      const onReady = (): void => { c.removeListener('error', onError); resolve() }
      const onError = (err: Error): void => { c.removeListener('ready', onReady); reject(err) }
      c.once('ready', onReady)
      c.once('error', onError)
      if (c.status === 'wait') c.connect().catch(() => {})
    })
  let answering = true
  let pinging: NodeJS.Timeout | undefined
  const connected = (): boolean => client.status === 'ready' && subscriber.status === 'ready'
  const reachable = (): boolean => answering && connected()
  let up = true
  let onChange: ((up: boolean, why: string) => void) | undefined
  let timeout = 0
  let failed: ((err: Error) => void) | undefined
  // At each ping, and as soon as either connection closes or is ready again: an outage shorter than a ping period is told too.
  const check = (): void => {
    if (reachable() === up) return
    up = !up
    onChange?.(up, connected() ? `Redis did not answer a PING within ${timeout} ms` : 'the connection to Redis is down')
  }
  return {
    client,
    subscriber,
    reachable,
    connected,
    watchLiveness: (intervalMs, timeoutMs, listener, onFailure) => {
      let inFlight = false
      up = reachable()
      onChange = listener
      timeout = timeoutMs
      for (const c of [client, subscriber]) c.on('close', check).on('ready', check)
      if (onFailure !== undefined) {
        // ioredis reconnects every 2 s at most, and a Redis that came back with another password refuses each attempt alike.
        failed = failureReporter(WARN_EVERY_MS, onFailure)
        for (const c of [client, subscriber]) c.on('error', failed)
      }
      pinging = setInterval(() => {
        check()
        if (inFlight || client.status !== 'ready') return
        inFlight = true
        timed(client.ping(), timeoutMs).then(() => { answering = true }, () => { answering = false }).finally(() => {
          inFlight = false
          check()
        })
      }, intervalMs).unref()
    },
    connect: async (timeoutMs) => {
      await timed(Promise.all([ready(client), ready(subscriber)]), timeoutMs, '; is the URL right, with rediss:// only for a Redis that speaks TLS?')
        .catch((err: Error) => { throw new Error(connectFailure(err)) })
    },
    close: async () => {
      clearInterval(pinging)
      onChange = undefined
      for (const c of [client, subscriber]) c.removeListener('close', check).removeListener('ready', check)
      if (failed !== undefined) for (const c of [client, subscriber]) c.removeListener('error', failed)
      subscriber.disconnect()
      // Ours stay heard to the end: ioredis may still fail a command of its own (the ready check's INFO after a
      // refused SELECT) as it closes, and prints an unheard error with its stack. An app's client is left as it was.
      if (owned) client.disconnect()
      else client.removeListener('error', quiet)
    }
  }
}

/** Rejects when a command takes longer than `ms` (its message ends with `hint`): a client with an offline queue would otherwise wait for Redis to return. */
export async function timed<T> (work: Promise<T>, ms: number, hint = ''): Promise<T> {
  return await within(work, ms, () => { throw new Error(`Redis did not answer within ${ms} ms${hint}`) })
}
