import net from 'node:net'
import type { AddressInfo } from 'node:net'
import { announce } from './site'

// The baseline for the splice: the plainest Node relay there is, pipe() both ways.
const target = Number(process.argv[2])

const server = net.createServer(client => {
  const upstream = net.connect(target, '127.0.0.1')
  const kill = (): void => { client.destroy(); upstream.destroy() }
  client.on('error', kill)
  upstream.on('error', kill)
  client.on('close', kill)
  upstream.on('close', kill)
  client.pipe(upstream)
  upstream.pipe(client)
})
server.listen(0, '127.0.0.1', () => announce({ port: (server.address() as AddressInfo).port }))
