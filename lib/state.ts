import { stat } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { FastifyBaseLogger } from 'fastify'
import { DataDirError } from './errors'
import { makeDir } from './make-dir'
import type { ClusterNode } from './cluster/cluster'
import type { ResolvedOptions } from './options'
import { FileRegistry } from './registry/file-registry'
import { MemoryRegistry } from './registry/memory-registry'
import { previousSecrets } from './registry/records'
import type { Registry } from './registry/registry'
import { syncGet } from './registry/sync-get'
import { FileReplayCache } from './stores/file-replay-cache'
import { MemoryReplayCache } from './stores/memory-replay-cache'
import type { ReplayCache } from './stores/replay-cache'
import { MemoryThrottleStore } from './stores/memory-throttle-store'
import type { ThrottleStore } from './stores/throttle-store'
import { watchThrottleStore } from './relay/throttle-store-watch'
import { failureReporter } from './relay/log-limit'
import { createDefaultVerifier, normaliseVerdict, type Verifier } from './tokens/verifier'

/**
 * What the relay keeps beyond one connection: the IDs and their secrets, the
 * tokens already used, the failed attempts. Each is the app's own when it
 * passed one, the cluster's in cluster mode, else this process's.
 */
export interface RelayState {
  registry: Registry
  replayCache: ReplayCache
  throttleStore: ThrottleStore
  verify: Verifier
  /** False while this process's replay journal cannot be written (always true without one). */
  journalWritable: () => boolean
  /** Tokens the replay cache can still take, when it can say (readiness reports 0). */
  replayCacheRoom?: () => number
  /** The replay cache's check, when it has one (readiness reports its rejection). */
  checkReplayCache?: () => Promise<void>
  /** An app's throttle store's check (readiness reports its rejection); the relay's own stores do not fail. */
  checkThrottleStore?: () => Promise<void>
  /** Closes what the plugin opened itself; what the app passed in is the app's to close. */
  close: () => Promise<void>
}

export async function openState (o: ResolvedOptions, cluster: ClusterNode | undefined, log?: FastifyBaseLogger): Promise<RelayState> {
  const ownRegistry = o.registry === undefined && cluster?.registry === undefined
  const ownReplayCache = o.replayCache === undefined && cluster?.replayCache === undefined
  if (o.dataDir !== undefined && (ownRegistry || ownReplayCache)) await openDataDir(o.dataDir)
  const registry: Registry = o.registry ?? cluster?.registry ?? (o.dataDir !== undefined ? new FileRegistry({ dataDir: o.dataDir }) : new MemoryRegistry())
  await registry.ready()
  const replayCache = o.replayCache ?? cluster?.replayCache ?? await defaultReplayCache(o, log)
  // The memory store cannot fail, and the cluster's counts in memory while Redis is away: only an app's store is watched.
  const watched = o.throttleStore === undefined ? undefined : watchThrottleStore(o.throttleStore, log)
  const throttleStore = watched?.store ?? cluster?.throttleStore ?? new MemoryThrottleStore()
  const cacheHealth = cacheHealthLog(replayCache, log)
  return {
    registry,
    replayCache,
    throttleStore,
    verify: makeVerifier(o, registry, replayCache, cacheHealth?.failed),
    journalWritable: replayCache instanceof FileReplayCache ? () => replayCache.writable() : () => true,
    ...(replayCache.room === undefined ? {} : { replayCacheRoom: () => replayCache.room!() }),
    ...(replayCache.check === undefined ? {} : { checkReplayCache: checkedBy(replayCache.check.bind(replayCache), cacheHealth) }),
    ...(watched === undefined ? {} : { checkThrottleStore: watched.check }),
    close: async () => {
      if (o.registry === undefined) await registry.close()
      if (o.replayCache === undefined) await replayCache.close?.()
      if (o.throttleStore === undefined) await throttleStore.close?.()
    }
  }
}

/**
 * Creates the data dir if need be, so that one that cannot be used fails the
 * start with its own error, not a bare ENOENT or ENOTDIR from wherever it is
 * first touched.
 */
async function openDataDir (dataDir: string): Promise<void> {
  try {
    await makeDir(dataDir)
    if ((await stat(dataDir)).isDirectory()) return
  } catch (err) {
    throw new DataDirError(dataDir, await whyNot(err as NodeJS.ErrnoException))
  }
  throw new DataDirError(dataDir, 'it is a file, not a directory')
}

async function whyNot (err: NodeJS.ErrnoException): Promise<string> {
  const at = err.path === undefined ? '' : ` ${err.path}`
  if (err.code === 'ENOTDIR') return `${await fileOnPath(err.path) ?? 'a part of its path'} is a file, not a directory`
  if (err.code === 'ENOENT') return `cannot create${at}: no such file or directory`
  if (err.code === 'EACCES' || err.code === 'EPERM') return `cannot create${at}: permission denied`
  if (err.code === 'EROFS') return `cannot create${at}: read-only file system`
  return err.message
}

/** The nearest part of `path` that exists and is not a directory: what an ENOTDIR is about. */
async function fileOnPath (path: string | undefined): Promise<string | undefined> {
  for (let at = path; at !== undefined && dirname(at) !== at; at = dirname(at)) {
    const found = await stat(at).catch(() => undefined)
    if (found !== undefined) return found.isDirectory() ? undefined : at
  }
  return undefined
}

// With a data dir the accepted tokens outlive a restart or a crash (docs/security.md); without one, the process.
async function defaultReplayCache (o: ResolvedOptions, log: FastifyBaseLogger | undefined): Promise<ReplayCache> {
  if (o.dataDir === undefined) return new MemoryReplayCache({ maxEntries: o.replayCacheSize })
  const cache = await FileReplayCache.open({ dataDir: o.dataDir, maxEntries: o.replayCacheSize, windowMs: o.tokenSkew * 1000, log })
  const { entries, badLines, journals } = cache.loaded
  log?.info({ file: cache.file, entries, journals }, 'replay journal opened; tokens accepted before the restart stay refused')
  if (badLines > 0) log?.warn({ file: cache.file, badLines }, 'unreadable lines of a replay journal were skipped (a write cut short by a crash or a full disk)')
  return cache
}

interface CacheHealth { failed: (err: unknown) => void, ok: () => void }

/**
 * A warn line, once a minute per cause, when the replay cache fails tokens
 * or the readiness probe's write, and an info line once it takes them again:
 * each refusal is an info line that says only `replay_cache_error`, and a
 * Redis that refuses writes (out of memory) stays up, so nothing else says
 * why. A journal says so itself (`the replay journal cannot be written`).
 */
function cacheHealthLog (replayCache: ReplayCache, log: FastifyBaseLogger | undefined): CacheHealth | undefined {
  if (log === undefined || replayCache instanceof FileReplayCache) return undefined
  const warn = failureReporter(60_000, reason => log.warn({ reason }, 'the replay cache cannot take tokens: CONNECTs with one-time tokens get 503 (store_unavailable) until it can'))
  let failing = false
  return {
    failed: err => {
      failing = true
      warn(err)
    },
    ok: () => {
      if (!failing) return
      failing = false
      log.info('the replay cache takes tokens again')
    }
  }
}

/** The cache's own check, for readiness, told to `health` either way. */
function checkedBy (check: () => Promise<void>, health: CacheHealth | undefined): () => Promise<void> {
  return async () => {
    try {
      await check()
    } catch (err) {
      health?.failed(err)
      throw err
    }
    health?.ok()
  }
}

function makeVerifier (o: ResolvedOptions, registry: Registry, replayCache: ReplayCache, onCacheError?: (err: unknown) => void): RelayState['verify'] {
  const custom = o.verifyToken
  if (custom === undefined) {
    return createDefaultVerifier({
      lookupSecret: id => syncGet(registry, id)?.secret,
      lookupPreviousSecrets: id => previousSecrets(syncGet(registry, id)),
      replayCache,
      totp: o.totp,
      skewSeconds: o.tokenSkew,
      replayCachePerId: o.replayCachePerId,
      onCacheError
    })
  }
  // Unknown IDs are refused here, so a custom verifier only ever judges tokens of IDs the registry knows.
  // It is not asked whether there is room: it judges first, and a full lot refuses after (docs/protocol.md).
  // The ID may be removed while it judges: the relay asks again as it parks.
  const recheck = (id: string) => (): 'unknown_id' | undefined => syncGet(registry, id) === undefined ? 'unknown_id' : undefined
  return async (id: string, token: string) => {
    if (syncGet(registry, id) === undefined) return { ok: false as const, reason: 'unknown_id', status: 401 as const }
    const verdict = normaliseVerdict(await custom(id, token))
    return verdict.ok ? { ...verdict, recheck: recheck(id) } : verdict
  }
}
