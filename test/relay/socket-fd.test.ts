import t from 'tap'
import { once } from 'node:events'
import net from 'node:net'
import { takeOverReading } from '../../lib/relay/socket-fd'
import { until } from '../helpers/until'

// What Node read and did not deliver must come out whole, however many chunks it sits in:
// Node 26's read() returns one buffered chunk per call, older majors all of them.
t.test('takeOverReading hands over every buffered chunk, then Node reads no more', async t => {
  const server = net.createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  const accepted = once(server, 'connection') as Promise<[net.Socket]>
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1')
  t.teardown(() => client.destroy())
  const [socket] = await accepted
  t.teardown(() => socket.destroy())
  socket.pause()
  const parts = [Buffer.alloc(1000, 'a'), Buffer.alloc(2000, 'b'), Buffer.alloc(3000, 'c')]
  // Each part on its own read of Node's, so that three chunks wait in the socket's buffer.
  for (const [i, part] of parts.entries()) {
    client.write(part)
    await until(() => socket.readableLength === parts.slice(0, i + 1).reduce((n, p) => n + p.length, 0), 3000, `part ${i + 1} buffered`)
  }
  const taken = takeOverReading(socket)
  t.ok(taken?.equals(Buffer.concat(parts)), `all ${Buffer.concat(parts).length} bytes, in order (got ${taken?.length ?? 0})`)
  t.equal(socket.readableLength, 0, 'nothing left behind in Node')
  // Bytes sent after the take-over stay in the kernel for whoever reads the descriptor next.
  client.write('later')
  await new Promise(resolve => setTimeout(resolve, 100))
  t.equal(socket.readableLength, 0, 'Node does not read on')
})
