import type { Duplex } from 'node:stream'

/** How long a closing connection goes on reading what its peer still sends, by default, in ms. */
export const DEFAULT_LINGER_MS = 2000

/**
 * Closes a connection without resetting it. Closing while the peer's bytes
 * sit unread makes the kernel send RST, and a peer that is still sending
 * (an upload refused early) can lose the answer it was sent before it reads
 * it. So the writing side ends after what is queued (a FIN, and TLS's
 * close_notify), whatever still arrives is read and dropped, and the socket
 * is destroyed at the peer's FIN, on an error, or after `lingerMs` for a
 * peer that never sends one. `last` is written before the FIN.
 */
export function lingerClose (socket: Duplex, lingerMs: number, last?: Buffer): void {
  if (socket.destroyed) return
  const timer = setTimeout(() => socket.destroy(), lingerMs)
  timer.unref()
  const destroy = (): void => {
    clearTimeout(timer)
    socket.destroy()
  }
  socket.on('error', destroy)
  socket.once('close', () => clearTimeout(timer))
  // Destroying with the answer still queued in user space would drop it.
  const afterFlush = (): void => {
    if (socket.writableFinished) destroy()
    else socket.once('finish', destroy)
  }
  if (socket.readableEnded) afterFlush()
  else socket.once('end', afterFlush)
  if (!socket.writableEnded) socket.end(last)
  socket.resume()
}
