import type { FastifyBaseLogger } from 'fastify'
import { ThrottleStoreError } from '../errors'
import { failureReporter } from './log-limit'
import type { ThrottleStore } from '../stores/throttle-store'

/** A key no budget uses (each counts under its own prefix, authfail: or unknownid:): what a check writes. */
const PROBE_KEY = 'probe:throttle-store'
const PROBE_MS = 1000

export interface WatchedThrottleStore {
  store: ThrottleStore
  /** Counts, cools off and reads a key of its own: rejects while the store cannot do all three (readiness). */
  check: () => Promise<void>
}

/** Whether `err` is a throttle store's failure, to be answered 503 with Retry-After rather than 500. */
export function isThrottleStoreFailure (err: unknown): boolean {
  return (err as { code?: unknown } | undefined)?.code === 'FST_RENDEZVOUS_THROTTLE_STORE'
}

/**
 * An app's throttle store, whose failures are made ThrottleStoreError (each
 * caller answers those 503), warned about once a minute per cause. A store
 * that failed is checked again before the next count is read: one that
 * reads but cannot count or cool off would otherwise have every guess
 * judged, each wrong one answered 503 and each good one accepted, with no
 * limit. So until a check passes, every attempt fails on the check.
 */
export function watchThrottleStore (inner: ThrottleStore, log?: FastifyBaseLogger): WatchedThrottleStore {
  const warn = failureReporter(60_000, reason => log?.warn({ reason }, 'the throttle store cannot count failed attempts: CONNECTs and requests naming an ID get 503 (throttle_unavailable) until it can'))
  let failing = false
  let failures = 0
  let checking: Promise<void> | undefined

  async function call<T> (run: () => Promise<T>): Promise<T> {
    try {
      return await run()
    } catch (err) {
      failing = true
      failures++
      warn(err)
      throw new ThrottleStoreError(String((err as Error | undefined)?.message ?? err), { cause: err })
    }
  }

  async function probe (): Promise<void> {
    const before = failures
    await call(async () => await inner.hit(PROBE_KEY, PROBE_MS))
    await call(async () => { await inner.block(PROBE_KEY, PROBE_MS) })
    await call(async () => await inner.blockedFor(PROBE_KEY))
    // A call that failed while this one ran keeps the store failing.
    if (!failing || failures !== before) return
    failing = false
    log?.info('the throttle store counts failed attempts again')
  }

  // Attempts at once share one check.
  const check = async (): Promise<void> => {
    checking ??= probe().finally(() => { checking = undefined })
    await checking
  }

  const store: ThrottleStore = {
    hit: async (key, windowMs) => await call(async () => await inner.hit(key, windowMs)),
    block: async (key, ms) => { await call(async () => { await inner.block(key, ms) }) },
    // Every attempt reads its counts first: while the store is failing, it is checked first.
    blockedFor: async key => {
      if (failing) await check()
      return await call(async () => await inner.blockedFor(key))
    },
    // Without refund(), counting is held in each node's memory (auth-throttle.ts): the wrapper must not add one.
    ...(typeof inner.refund === 'function' ? { refund: async (key: string) => { await call(async () => { await inner.refund!(key) }) } } : {}),
    ...(typeof inner.close === 'function' ? { close: async () => { await inner.close!() } } : {})
  }
  return { store, check }
}
