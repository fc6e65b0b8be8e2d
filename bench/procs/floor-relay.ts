import net from 'node:net'
import type { AddressInfo } from 'node:net'
import { announce } from './site'

/*
 * The floor for scenario 2: the socket work one rendezvous needs in Node and
 * nothing else. A CONNECT gets its 200 and is parked; any other request is
 * written down the newest parked connection and piped both ways. No token,
 * no Digest, no HTTP parser, no limits, no logs, no metrics: what it costs
 * per rendezvous is what Node costs, which no relay written in Node can beat.
 */
const OK = Buffer.from('HTTP/1.1 200 Connection established\r\n\r\n')
const parked: net.Socket[] = []
const waiting: Array<(hidden: net.Socket) => void> = []

function pair (client: net.Socket, head: Buffer, hidden: net.Socket): void {
  const kill = (): void => { client.destroy(); hidden.destroy() }
  hidden.on('close', kill)
  client.on('close', kill)
  hidden.write(head)
  client.pipe(hidden)
  hidden.pipe(client)
}

const server = net.createServer(socket => {
  socket.setNoDelay(true)
  socket.on('error', () => socket.destroy())
  let head: Buffer = Buffer.alloc(0)
  const onData = (chunk: Buffer): void => {
    head = head.length === 0 ? chunk : Buffer.concat([head, chunk])
    if (head.indexOf('\r\n\r\n') === -1) return
    socket.off('data', onData)
    socket.pause()
    if (head.subarray(0, 8).toString('latin1') === 'CONNECT ') {
      socket.write(OK)
      const waiter = waiting.shift()
      if (waiter !== undefined) return waiter(socket)
      parked.push(socket)
      return
    }
    let hidden = parked.pop()
    // One that closed while parked is dropped here rather than tracked.
    while (hidden?.destroyed === true) hidden = parked.pop()
    if (hidden !== undefined) pair(socket, head, hidden)
    else waiting.push(h => pair(socket, head, h))
  }
  socket.on('data', onData)
})
server.listen(0, '127.0.0.1', () => announce({ port: (server.address() as AddressInfo).port }))
process.once('SIGTERM', () => process.exit(0))
