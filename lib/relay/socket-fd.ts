import { Socket } from 'node:net'

/*
 * The second and last module that touches Node internals (the first is
 * handoff.ts; see docs/architecture.md). The native data path needs two
 * things no public API gives: a plain TCP socket's file descriptor, and a
 * way to make Node stop reading it for good without closing it. Both live
 * on the socket's libuv handle, `socket._handle`. The per-address cap needs
 * a third: the TCP socket a TLS server accepted, behind the TLS socket that
 * HTTP hands on (`tlsSocket._parent`).
 */

interface TcpHandle {
  fd?: number
  reading?: boolean
  readStop?: () => number
  readStart?: () => number
}

function handleOf (socket: Socket): TcpHandle | undefined {
  const handle = (socket as Socket & { _handle?: TcpHandle | null })._handle
  return handle === null ? undefined : handle
}

/**
 * The descriptor of a plain, open TCP socket, or undefined for anything
 * else: a TLS socket (its bytes are not the peer's), a pipe, a destroyed
 * socket, or a Node that hides the fd.
 */
export function tcpFd (socket: Socket): number | undefined {
  if ((socket as Socket & { encrypted?: boolean }).encrypted === true || socket.destroyed || socket.connecting) return undefined
  const handle = handleOf(socket)
  if (handle?.constructor?.name !== 'TCP' || typeof handle.readStop !== 'function') return undefined
  const fd = handle.fd
  return typeof fd === 'number' && fd >= 0 ? fd : undefined
}

/**
 * Takes every byte Node has read from the socket and not yet delivered,
 * then stops Node from reading it again. Synchronous: no read can happen
 * between the two, as libuv reads only in the event loop. read() may
 * restart the handle's reading, which is why readStop comes after it.
 */
export function takeOverReading (socket: Socket): Buffer | undefined {
  socket.pause()
  // Node 26's read() hands over one buffered chunk at a time, where older majors gave all of them: read until empty.
  const chunks: Buffer[] = []
  while (socket.readableLength > 0) {
    const chunk = socket.read() as Buffer | null
    if (chunk === null) break
    chunks.push(chunk)
  }
  const buffered = chunks.length <= 1 ? chunks[0] : Buffer.concat(chunks)
  const handle = handleOf(socket)
  if (handle?.readStop !== undefined) {
    // `reading` is what Node checks before it starts reading again; false with the handle stopped keeps the two in step.
    handle.reading = false
    handle.readStop()
  }
  return buffered
}

/**
 * Undoes takeOverReading once nothing else reads the socket (the native
 * path let go of it): Node reads it again, as a lingering close must.
 * Node's stream may still count a read as pending from before it was
 * stopped, so resume() alone would never restart the handle.
 */
export function giveBackReading (socket: Socket): void {
  const handle = handleOf(socket)
  if (socket.destroyed || handle?.readStart === undefined || handle.reading === true) return
  handle.reading = true
  if (handle.readStart() !== 0) socket.destroy()
}

/**
 * The socket the server's 'connection' event gave: for a server-side TLS
 * socket the TCP socket under it, else the socket itself. What is counted at
 * accept is found again here, whatever HTTP wrapped around it since.
 */
export function acceptedSocket (socket: Socket): Socket {
  const parent = (socket as Socket & { _parent?: unknown })._parent
  return (socket as Socket & { encrypted?: boolean }).encrypted === true && parent instanceof Socket ? parent : socket
}
