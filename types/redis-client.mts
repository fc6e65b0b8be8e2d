// The `redis` option takes an ioredis client by its shape, not by the class of
// the ioredis this package depends on: @fastify/redis 9 hands out a client of
// ioredis 6, and an application may hold a copy of ioredis of its own.
import { EventEmitter } from 'node:events'
import Fastify from 'fastify'
import rendezvous, { type RedisClientLike, type RedisSource } from 'fastify-rendezvous'
import { Cluster, Redis } from 'ioredis'

type Mapping = 'legacy' | 'resp3'
type Status = 'wait' | 'reconnecting' | 'connecting' | 'connect' | 'ready' | 'close' | 'end'

// A client class of another copy of ioredis, as TypeScript sees ioredis 6's:
// its protected and private members make it unrelated to this package's
// ioredis 5 classes, however alike the rest is.
declare class ForeignRedis<M extends Mapping = 'legacy'> extends EventEmitter {
  protected connecting: boolean
  status: Status
  mapping: M
  connect (callback?: (err?: Error | null) => void): Promise<void>
  disconnect (reconnect?: boolean): void
  duplicate<Override extends { replyMapping?: Mapping } | undefined = undefined> (override?: Override): ForeignRedis<Override extends { replyMapping: 'resp3' } ? 'resp3' : M>
  on (event: 'message', cb: (channel: string, message: string) => void): this
  on (event: 'error', cb: (error: Error) => void): this
  on (event: Status, cb: () => void): this
  on (event: string | symbol, listener: (...args: any[]) => void): this
  get (key: string, callback?: (err?: Error | null, result?: string | null) => void): Promise<string | null>
  set (key: string, value: string | number, ...options: Array<string | number>): Promise<string | null>
  del (...keys: string[]): Promise<number>
  hget (key: string, field: string): Promise<string | null>
  hset (key: string, field: string, value: string | number): Promise<number>
  hdel (key: string, ...fields: string[]): Promise<number>
  hgetall (key: string): Promise<Record<string, string>>
  eval (script: string, numKeys: number | string, ...args: Array<string | number | Buffer>): Promise<unknown>
  pttl (key: string): Promise<number>
  ping (): Promise<'PONG'>
  scan (cursor: number | string, ...args: Array<string | number>): Promise<[cursor: string, elements: string[]]>
  subscribe (...channels: string[]): Promise<unknown>
}

declare class ForeignCluster extends ForeignRedis {
  protected slotsTimer: unknown
  nodes (role?: 'master' | 'slave' | 'all'): ForeignRedis[]
}

const cluster = { secret: 'a cluster secret of 32 bytes or more', advertise: '10.0.0.1:9443' }
const app = Fastify()
app.register(rendezvous, { redis: new ForeignRedis(), cluster })
app.register(rendezvous, { redis: new ForeignRedis<'resp3'>(), cluster })
app.register(rendezvous, { redis: new ForeignCluster(), cluster })
// What @fastify/redis decorates the instance with: the client, and its namespaces.
declare const fastifyRedis: { [namespace: string]: ForeignRedis } & ForeignRedis
app.register(rendezvous, { redis: fastifyRedis, cluster })

// This package's own ioredis fits too: Redis (Sentinel is a Redis) and Cluster.
const own: RedisClientLike[] = [new Redis({ lazyConnect: true }), new Redis({ sentinels: [{ host: '10.0.0.10', port: 26379 }], name: 'main' }), new Cluster([{ host: '10.0.0.10', port: 6379 }])]
const sources: RedisSource[] = ['redis://10.0.0.10:6379', new ForeignCluster(), ...own]
console.log(sources.length)

// Not a client: it has the state and a duplicate, but none of the commands.
// @ts-expect-error the cluster sends commands through the client
app.register(rendezvous, { redis: { status: 'ready', duplicate: () => new ForeignRedis(), connect: async () => {}, disconnect: () => {}, on: () => {}, once: () => {}, removeListener: () => {} }, cluster })
// @ts-expect-error a port is not a URL
app.register(rendezvous, { redis: 6379, cluster })
