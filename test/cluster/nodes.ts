import Fastify, { type FastifyInstance } from 'fastify'
import type { AddressInfo } from 'node:net'
import rendezvous, { type ClusterOptions, type RendezvousOptions } from '../../lib/index'
import { createV1Token } from '../../lib/tokens/v1'
import type { Test } from 'tap'
import { openWire, statusOf, type WireClient } from '../helpers/wire'

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
export async function startNode (name: string, redisUrl: string, plugin: RendezvousOptions = {}, logStream?: NodeJS.WritableStream, timers: Partial<ClusterOptions> = {}): Promise<TestNode> {
  const app = Fastify({ logger: logStream === undefined ? false : { level: 'debug', stream: logStream } })
  const { cluster, ...rest } = plugin
  await app.register(rendezvous, {
    waitTimeout: 1000,
    ...rest,
    redis: redisUrl,
    cluster: { secret: CLUSTER_SECRET, nodeId: name, heartbeat: 200, presenceTtl: 1000, resyncInterval: 500, ...timers, ...cluster }
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

/** The status a CONNECT with a fresh token made from `secret` gets; a parked socket is let go at once. */
export async function connectStatus (port: number, tls: boolean, id: string, secret: string): Promise<number | undefined> {
  const wire = await openWire(port, tls)
  wire.write(`CONNECT uuid:${id}?response=${createV1Token(id, secret)} HTTP/1.1\r\nHost: h\r\n\r\n`)
  await wire.untilText('\r\n\r\n')
  const status = statusOf(wire.text)
  wire.destroy()
  return status
}

/** The request a mobile client sends for `id`, and the head the hidden server must receive for it. */
export function rendezvousRequest (id: string, path = '/p'): { sent: string, received: string } {
  return {
    sent: `GET ${path} HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="${id}"\r\n\r\n`,
    received: `GET ${path} HTTP/1.1\r\nHost: h\r\n\r\n`
  }
}

/** One exchange from a client on `via` to an already parked `hidden`: the head arrives without Authorization, the 204 comes back. */
export async function exchange (t: Test, via: TestNode, hidden: WireClient, id: string, path?: string): Promise<void> {
  const request = rendezvousRequest(id, path)
  const client = await via.open()
  client.write(request.sent)
  await hidden.untilText('\r\n\r\n')
  t.equal(hidden.text, request.received, 'the head reached the hidden server without Authorization')
  hidden.write('HTTP/1.1 204 No Content\r\n\r\n')
  await client.untilText('\r\n\r\n')
  t.equal(statusOf(client.text), 204)
  hidden.destroy()
  await client.untilClosed()
}
