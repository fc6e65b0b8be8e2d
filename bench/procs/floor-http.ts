import http from 'node:http'
import type net from 'node:net'
import type { AddressInfo } from 'node:net'
import { claim, pair, park } from './floor-lot'
import { announce } from './site'

/*
 * Scenario 2's floor with Node's HTTP server in front: both heads go through
 * node:http's parser, as they must in a relay that shares an HTTP server
 * with an app. A CONNECT gets its 200 and is parked; a request's head is
 * rebuilt from what the parser kept and written down the newest parked
 * connection, whose answer is piped back raw. Nothing is checked, and a
 * connection carries one request: what it costs is what Node's HTTP server
 * adds to the bare floor (floor-relay.ts).
 */

function headOf (req: http.IncomingMessage): Buffer {
  let text = `${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/${req.httpVersion}\r\n`
  const raw = req.rawHeaders
  for (let i = 0; i < raw.length; i += 2) text += `${raw[i]}: ${raw[i + 1]}\r\n`
  return Buffer.from(text + '\r\n', 'latin1')
}

const server = http.createServer((req, _res) => {
  const client = req.socket
  client.setNoDelay(true)
  const head = headOf(req)
  claim(hidden => pair(client, head, hidden, true))
})
server.on('connect', (_req: http.IncomingMessage, socket: net.Socket) => {
  socket.setNoDelay(true)
  socket.on('error', () => socket.destroy())
  park(socket)
})
server.on('clientError', (_err, socket) => socket.destroy())
server.listen(0, '127.0.0.1', () => announce({ port: (server.address() as AddressInfo).port }))
process.once('SIGTERM', () => process.exit(0))
