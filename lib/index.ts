import fp from 'fastify-plugin'
import type { FastifyPluginAsync } from 'fastify'
import { clientErrorHandler } from './http/client-error'
import { frameworkErrors } from './relay/framework-errors'
import { plugin } from './plugin'
import type { Decorator, Stats } from './decorator'
import { FileRegistry } from './registry/file-registry'
import { MemoryRegistry } from './registry/memory-registry'
import { MemoryReplayCache } from './stores/memory-replay-cache'
import { MemoryThrottleStore } from './stores/memory-throttle-store'
import type * as cluster from './cluster/options'
import type * as redis from './cluster/redis-connection'
import type * as options from './options'
import type * as liveMetrics from './relay/live-metrics'
import type * as registries from './registry/registry'
import type * as replay from './stores/replay-cache'
import type * as throttle from './stores/throttle-store'
import { createV1Token } from './tokens/v1'
import { createTotp } from './tokens/totp'
import * as errors from './errors'

/** The plugin, carrying the package's other exports as Fastify's own plugins do. */
interface RendezvousPlugin extends FastifyPluginAsync<options.RendezvousOptions> {
  default: RendezvousPlugin
  rendezvous: RendezvousPlugin
  fastifyRendezvous: RendezvousPlugin
  FileRegistry: typeof FileRegistry
  MemoryRegistry: typeof MemoryRegistry
  MemoryReplayCache: typeof MemoryReplayCache
  MemoryThrottleStore: typeof MemoryThrottleStore
  createV1Token: typeof createV1Token
  createTotp: typeof createTotp
  errors: typeof errors
  clientErrorHandler: typeof clientErrorHandler
  frameworkErrors: typeof frameworkErrors
}

// The types of the package, for `import { type X } from 'fastify-rendezvous'`
// and `rendezvous.X`. Types only, so it merges with the constant below.
declare namespace rendezvous {
  export type RendezvousOptions = options.RendezvousOptions
  export type TokenVerdict = options.TokenVerdict
  export type VerifyToken = options.VerifyToken
  export type TotpMode = options.TotpMode
  export type AuthFailureLimits = options.AuthFailureLimits
  export type UnknownIdLimits = options.UnknownIdLimits
  export type Registry = registries.Registry
  export type IdentityRecord = registries.IdentityRecord
  export type AddIdentity = registries.AddIdentity
  export type RotateSecret = registries.RotateSecret
  export type AdminOptions = options.AdminOptions
  export type ReplayCache = replay.ReplayCache
  export type ReplayVerdict = replay.ReplayVerdict
  export type ThrottleStore = throttle.ThrottleStore
  export type ClusterOptions = cluster.ClusterOptions
  export type PeerTlsOptions = cluster.PeerTlsOptions
  export type RedisSource = redis.RedisSource
  export type RedisClientLike = redis.RedisClientLike
  export type FileRegistry = InstanceType<typeof FileRegistry>
  export type MemoryRegistry = InstanceType<typeof MemoryRegistry>
  export type MemoryReplayCache = InstanceType<typeof MemoryReplayCache>
  export type MemoryThrottleStore = InstanceType<typeof MemoryThrottleStore>
  export type RendezvousStats = Stats
  export type RendezvousDecorator = Decorator
  export type IdCounts = liveMetrics.IdCounts
  export type SplicePath = options.SplicePath
}

// eslint-disable-next-line @typescript-eslint/no-redeclare -- merges with the types-only namespace above
const rendezvous = fp(plugin, { fastify: '5.x', name: 'fastify-rendezvous' }) as RendezvousPlugin

// The package is CommonJS shaped like Fastify's own plugins, so that every
// consumer gets the plugin function: `require('fastify-rendezvous')`, and an
// ESM default import, which is `module.exports`. `export =` makes the emitted
// types say so (an `export default` would give TypeScript's ESM view the
// whole module object); each name is set as `module.exports.name` because that
// is the form Node's ESM loader detects named exports of CommonJS by. (tsc
// emits `export =` last, hence the assignment of the same value up front.)
// A new export needs a member in RendezvousPlugin (or a type in the
// namespace), a line here, and its name in test/package/exports.test.ts.
export = rendezvous
module.exports = rendezvous
module.exports.default = rendezvous
module.exports.rendezvous = rendezvous
module.exports.fastifyRendezvous = rendezvous
module.exports.FileRegistry = FileRegistry
module.exports.MemoryRegistry = MemoryRegistry
module.exports.MemoryReplayCache = MemoryReplayCache
module.exports.MemoryThrottleStore = MemoryThrottleStore
module.exports.createV1Token = createV1Token
module.exports.createTotp = createTotp
module.exports.errors = errors
module.exports.clientErrorHandler = clientErrorHandler
module.exports.frameworkErrors = frameworkErrors
