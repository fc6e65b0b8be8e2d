import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { AddressInfo } from 'node:net'
import rendezvous, { MemoryRegistry, type RendezvousOptions } from '../../lib/index'
import { createV1Token } from '../../lib/tokens/v1'
import { SECRET } from './fixtures'
import { tlsCert, tlsKey } from './tls'
import { until } from './until'
import { openWire, type WireClient } from './wire'

export interface TestRendezvous {
  app: FastifyInstance
  port: number
  tls: boolean
  registry: MemoryRegistry
  /** Opens a raw connection to the relay. */
  open: (halfOpen?: boolean) => Promise<WireClient>
  /** Parks a hidden-server connection for `id` and returns it once it has read the 200. */
  park: (id: string, secret?: string, halfOpen?: boolean) => Promise<WireClient>
  close: () => Promise<void>
}

export interface TestRendezvousOptions {
  tls?: boolean
  /** Where it listens (127.0.0.1 by default); clients connect to 127.0.0.1 either way. */
  host?: string
  plugin?: RendezvousOptions
  fastify?: FastifyServerOptions
  ids?: string[]
  /** Runs before the plugin is registered, e.g. to add hooks or routes. */
  before?: (app: FastifyInstance) => void | Promise<void>
  after?: (app: FastifyInstance) => void | Promise<void>
}

export async function startRendezvous (opts: TestRendezvousOptions = {}): Promise<TestRendezvous> {
  const tls = opts.tls ?? false
  const registry = new MemoryRegistry()
  for (const id of opts.ids ?? ['hub-1']) await registry.add({ id, secret: SECRET })
  const app = Fastify({
    logger: false,
    ...(tls ? { https: { key: tlsKey, cert: tlsCert } } : {}),
    ...opts.fastify
  } as FastifyServerOptions)
  await opts.before?.(app)
  await app.register(rendezvous, { registry, waitTimeout: 2000, ...opts.plugin })
  await opts.after?.(app)
  await app.listen({ port: 0, host: opts.host ?? '127.0.0.1' })
  const port = (app.server.address() as AddressInfo).port
  const open = async (halfOpen = false): Promise<WireClient> => await openWire(port, tls, halfOpen)
  const park = async (id: string, secret = SECRET, halfOpen = false): Promise<WireClient> => {
    const wire = await open(halfOpen)
    wire.write(`CONNECT uuid:${id}?response=${createV1Token(id, secret)} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`)
    await wire.untilText('\r\n\r\n')
    const ok = 'HTTP/1.1 200 OK\r\n\r\n'
    if (!wire.text.startsWith(ok)) throw new Error(`park refused: ${wire.text}`)
    // A waiting client's request may arrive in the same read as the 200; keep it.
    wire.received = wire.received.subarray(ok.length)
    return wire
  }
  return { app, port, tls, registry, open, park, close: async () => { await app.close() } }
}

/** Waits until the relay reports `n` parked connections. */
export async function untilParked (relay: TestRendezvous, n: number, ms = 3000): Promise<void> {
  await until(() => relay.app.rendezvous.stats().parked === n, ms, `${n} parked (have ${relay.app.rendezvous.stats().parked})`)
}
