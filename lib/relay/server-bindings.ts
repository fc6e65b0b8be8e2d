import type { Server as HttpServer } from 'node:http'

/**
 * The servers Fastify listens with besides `fastify.server`. Listening on
 * `localhost` when it names both 127.0.0.1 and ::1, Fastify binds the second
 * address with a server of its own, which shares the request handler but not
 * the 'connection' and 'connect' listeners the hand-off puts on the first:
 * there, a CONNECT would be dropped and a rendezvous never made.
 *
 * Fastify keeps them under a symbol it does not export, so this finds the
 * symbol by its description; with a Fastify that keeps them elsewhere it
 * finds none, and `fastify.addresses()` tells whether some were missed.
 */
export function extraServers (fastify: object): HttpServer[] {
  for (let o: object | null = fastify; o !== null; o = Object.getPrototypeOf(o)) {
    const key = Object.getOwnPropertySymbols(o).find(s => s.description === 'fastify.serverBindings')
    if (key === undefined) continue
    const bindings = (o as Record<symbol, unknown>)[key]
    return Array.isArray(bindings) ? bindings as HttpServer[] : []
  }
  return []
}
