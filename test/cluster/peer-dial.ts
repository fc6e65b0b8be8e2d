import { connect, type Socket } from 'node:net'
import { WireClient } from '../helpers/wire'

/** The value of `name{outcome="..."}` in a metrics text, 0 when absent. */
export function counter (text: string, name: string, outcome: string): number {
  const m = new RegExp(`^${name}\\{outcome="${outcome}"\\} (\\d+)$`, 'm').exec(text)
  return m === null ? 0 : Number(m[1])
}

/** A raw connection to a node's peer listener at `address` (HOST:PORT). */
export async function dialPeer (address: string): Promise<WireClient> {
  const [host, port] = address.split(':')
  const socket: Socket = connect(Number(port), host)
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject))
  socket.setNoDelay(true)
  return new WireClient(socket)
}
