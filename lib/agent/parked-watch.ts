import type * as net from 'node:net'
import { dropReason } from './events'

/**
 * Watches a parked connection. Its first byte from the rendezvous means a
 * mobile client was matched to it: `onTaken` gets that chunk with the socket
 * paused, for the relay to take over. A close before that is `onDropped`,
 * with the reason. Returns the function that stops watching.
 */
export function watchParked (
  socket: net.Socket,
  onTaken: (head: Buffer) => void,
  onDropped: (drop: { reason: string, error?: Error }) => void
): () => void {
  let lastError: Error | undefined
  let ended = false
  const onData = (chunk: Buffer): void => { socket.pause(); onTaken(chunk) }
  const onError = (err: Error): void => { lastError = err }
  const onEnd = (): void => { ended = true }
  const onClose = (): void => onDropped(dropReason(lastError, ended))
  socket.on('data', onData)
  socket.on('error', onError)
  socket.once('end', onEnd)
  socket.once('close', onClose)
  socket.resume()
  return () => {
    socket.off('data', onData)
    socket.off('error', onError)
    socket.off('end', onEnd)
    socket.off('close', onClose)
  }
}
