import { createServer, connect, type Socket } from 'node:net'
import { once } from 'node:events'
import { WireClient } from './wire'

export interface SocketPair {
  /** The relay's end: what the unit under test holds. */
  near: Socket
  /** The peer's end, recording what it receives. */
  far: WireClient
}

interface Teardown { teardown: (fn: () => unknown) => void }

/**
 * Opens connected TCP socket pairs on loopback, for unit tests of code that
 * takes sockets. Everything is destroyed at teardown.
 */
export async function socketPairs (t: Teardown, count: number, opts: { allowHalfOpen?: boolean } = {}): Promise<SocketPair[]> {
  const allowHalfOpen = opts.allowHalfOpen ?? true
  const server = createServer({ allowHalfOpen })
  const accepted: Socket[] = []
  server.on('connection', socket => accepted.push(socket))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  const pairs: SocketPair[] = []
  for (let i = 0; i < count; i++) {
    const far = connect({ port, host: '127.0.0.1', allowHalfOpen })
    await once(far, 'connect')
    while (accepted.length <= i) await once(server, 'connection')
    pairs.push({ near: accepted[i], far: new WireClient(far) })
  }
  t.teardown(async () => {
    for (const pair of pairs) {
      pair.near.destroy()
      pair.far.destroy()
    }
    server.close()
  })
  return pairs
}

export async function socketPair (t: Teardown, opts: { allowHalfOpen?: boolean } = {}): Promise<SocketPair> {
  return (await socketPairs(t, 1, opts))[0]
}
