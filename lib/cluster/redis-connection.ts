import { Redis, type Cluster, type RedisOptions } from 'ioredis'

/** A client of either kind ioredis offers; Sentinel is a Redis client with sentinel options. */
export type RedisClient = Redis | Cluster

/** What the `redis` plugin option accepts: a URL, or a client the application already has. */
export type RedisSource = string | RedisClient

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
   */
  watchLiveness: (intervalMs: number, timeoutMs: number, onChange?: (up: boolean, why: string) => void) => void
  /**
   * Connects our own clients; a given client is left to its owner. Rejects
   * after `timeoutMs`: a Redis that accepts connections and never answers
   * (hung, or TLS spoken to a plain port) would otherwise be waited for forever.
   */
  connect: (timeoutMs: number) => Promise<void>
  close: () => Promise<void>
}

export function isRedisClient (value: unknown): value is RedisClient {
  return typeof value === 'object' && value !== null &&
    typeof (value as { duplicate?: unknown }).duplicate === 'function' &&
    typeof (value as { status?: unknown }).status === 'string'
}

export function openRedis (source: RedisSource): RedisConnection {
  const owned = typeof source === 'string'
  const client: RedisClient = owned ? new Redis(source, OWN_CLIENT) : source
  // The subscriber is always ours, even for a given client: subscribing would take that client away from its owner.
  const subscriber: RedisClient = owned ? new Redis(source, OWN_CLIENT) : source.duplicate()
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
    watchLiveness: (intervalMs, timeoutMs, listener) => {
      let inFlight = false
      up = reachable()
      onChange = listener
      timeout = timeoutMs
      for (const c of [client, subscriber]) c.on('close', check).on('ready', check)
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
    },
    close: async () => {
      clearInterval(pinging)
      onChange = undefined
      for (const c of [client, subscriber]) c.removeListener('close', check).removeListener('ready', check)
      client.removeListener('error', quiet)
      subscriber.disconnect()
      if (owned) client.disconnect()
    }
  }
}

/** Rejects when a command takes longer than `ms` (its message ends with `hint`): a client with an offline queue would otherwise wait for Redis to return. */
export async function timed<T> (work: Promise<T>, ms: number, hint = ''): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`Redis did not answer within ${ms} ms${hint}`)), ms)
  })
  try {
    return await Promise.race([work, late])
  } finally {
    clearTimeout(timer)
  }
}
