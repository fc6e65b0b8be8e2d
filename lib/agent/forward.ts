import net from 'node:net'

export interface LocalTarget {
  host: string
  port: number
}

// After one side closed, the other gets this long to flush and say goodbye.
const LINGER_MS = 5000

const BAD_GATEWAY_BODY = 'The hidden server\'s local service cannot be reached.\n'
const BAD_GATEWAY = 'HTTP/1.1 502 Bad Gateway\r\n' +
  'Content-Type: text/plain; charset=utf-8\r\n' +
  `Content-Length: ${Buffer.byteLength(BAD_GATEWAY_BODY)}\r\n` +
  'Connection: close\r\n\r\n' + BAD_GATEWAY_BODY

/**
 * Splices a taken rendezvous connection to a local TCP service: `head` (the
 * bytes already read from the rendezvous) goes first, then both directions
 * flow through pipe(), which gives backpressure both ways.
 */
export function forwardToLocal (
  remote: net.Socket,
  head: Buffer,
  target: LocalTarget,
  onError: (err: Error, side: 'local' | 'remote') => void
): net.Socket {
  const local = net.connect({ host: target.host, port: target.port })
  local.setNoDelay(true)
  let connected = false
  local.once('connect', () => { connected = true })

  local.on('error', (err) => {
    onError(err, 'local')
    // Nothing was relayed yet, so the mobile client can still get a real answer.
    if (!connected && !remote.destroyed) {
      remote.unpipe(local)
      remote.end(BAD_GATEWAY)
    }
  })
  remote.on('error', (err) => onError(err, 'remote'))

  local.write(head)
  remote.pipe(local)
  local.pipe(remote)
  closeTogether(remote, local)
  closeTogether(local, remote)
  return local
}

/**
 * Hands a taken connection to an in-process server. The bytes already read
 * go back in front of the stream first, so the server's parser sees the
 * request from its first byte.
 */
export function forwardToServer (remote: net.Socket, head: Buffer, server: net.Server): void {
  if (head.length > 0) remote.unshift(head)
  server.emit('connection', remote)
  // The socket was paused to hold those bytes, and a server's on('data') does not undo an explicit pause.
  remote.resume()
}

function closeTogether (a: net.Socket, b: net.Socket): void {
  a.once('close', () => {
    if (b.destroyed) return
    // Anything b still receives has nowhere to go; read it so b sees the peer's FIN.
    b.unpipe(a)
    b.resume()
    // end(), not destroy(): what a already sent through b must still be flushed.
    b.end()
    const timer = setTimeout(() => b.destroy(), LINGER_MS)
    timer.unref()
    b.once('close', () => clearTimeout(timer))
  })
}
