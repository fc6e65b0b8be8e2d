import net from 'node:net'
import type { AddressInfo } from 'node:net'
import { claim, pair, park } from './floor-lot'
import { announce } from './site'

/*
 * The floor for scenario 2: the socket work one rendezvous needs in Node and
 * nothing else. A CONNECT gets its 200 and is parked; any other request is
 * written down the newest parked connection and piped both ways. No token,
 * no Digest, no HTTP parser, no limits, no logs, no metrics: what it costs
 * per rendezvous is what Node costs, which no relay written in Node can beat.
 */

const server = net.createServer(socket => {
  socket.setNoDelay(true)
  socket.on('error', () => socket.destroy())
  let head: Buffer = Buffer.alloc(0)
  const onData = (chunk: Buffer): void => {
    head = head.length === 0 ? chunk : Buffer.concat([head, chunk])
    if (head.indexOf('\r\n\r\n') === -1) return
    socket.off('data', onData)
    socket.pause()
    if (head.subarray(0, 8).toString('latin1') === 'CONNECT ') park(socket)
    else claim(hidden => pair(socket, head, hidden))
  }
  socket.on('data', onData)
})
server.listen(0, '127.0.0.1', () => announce({ port: (server.address() as AddressInfo).port }))
process.once('SIGTERM', () => process.exit(0))
