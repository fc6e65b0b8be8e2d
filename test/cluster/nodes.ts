import Fastify, { type FastifyInstance } from 'fastify'
import type { AddressInfo } from 'node:net'
import rendezvous, { type RendezvousOptions } from '../../lib/index'
import { createV1Token } from '../../lib/tokens/v1'
import { openWire, type WireClient } from '../helpers/wire'

export const CLUSTER_SECRET = 'a cluster secret for the tests'

export interface TestNode {
  name: string
  app: FastifyInstance
  port: number
  open: () => Promise<WireClient>
  park: (id: string, secret: string) => Promise<WireClient>
  close: () => Promise<void>
}

/** One node of a cluster in this process, plain HTTP on loopback, with short timers so tests stay quick. */
export async function startNode (name: string, redisUrl: string, plugin: RendezvousOptions = {}): Promise<TestNode> {
  const app = Fastify({ logger: false })
  const { cluster, ...rest } = plugin
  await app.register(rendezvous, {
    waitTimeout: 1000,
    ...rest,
    redis: redisUrl,
    cluster: { secret: CLUSTER_SECRET, nodeId: name, heartbeat: 200, presenceTtl: 1000, resyncInterval: 500, ...cluster }
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as AddressInfo).port
  const open = async (): Promise<WireClient> => await openWire(port, false)
  const park = async (id: string, secret: string): Promise<WireClient> => {
    const wire = await open()
    wire.write(`CONNECT uuid:${id}?response=${createV1Token(id, secret)} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`)
    await wire.untilText('\r\n\r\n')
    const ok = 'HTTP/1.1 200 OK\r\n\r\n'
    if (!wire.text.startsWith(ok)) throw new Error(`park refused at ${name}: ${wire.text}`)
    wire.received = wire.received.subarray(ok.length)
    return wire
  }
  return { name, app, port, open, park, close: async () => { await app.close() } }
}

/** Polls until `test` holds, for state that travels through Redis. */
export async function until (test: () => boolean | Promise<boolean>, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await test())) {
    if (Date.now() > deadline) throw new Error(`no ${what} within ${ms} ms`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}
