import type { Socket } from 'node:net'

export interface ClientWatch {
  /** Whether the client has left: a FIN, a reset or a close. */
  readonly gone: boolean
  /**
   * Aborts once the client has left. Made on first use: most clients find a
   * parked connection at once and never need one, and an AbortController
   * costs about as much as the rest of the watch.
   */
  readonly signal: AbortSignal
  /** Stops reading; returns the bytes read meanwhile, which belong in front of anything still unread. */
  stop: () => Buffer
}

/**
 * Reads a claimed mobile client while it waits for a parked connection.
 *
 * A socket nobody reads never reports a FIN, and Node lets HTTP sockets stay
 * half-open: a client that sent its request and left would stay queued, and
 * the next hidden server to park would execute a request nobody waits for.
 * Reading is the only way to see the FIN, so the bytes read (the body) are
 * kept for the hidden server; past `maxBuffer` reading pauses, which leaves
 * the FIN of a client with a large body unseen until the body is relayed.
 */
export function watchClient (socket: Socket, maxBuffer: number): ClientWatch {
  let gone = false
  let controller: AbortController | undefined
  const chunks: Buffer[] = []
  let size = 0
  const onData = (chunk: Buffer): void => {
    chunks.push(chunk)
    size += chunk.length
    if (size >= maxBuffer) socket.pause()
  }
  const onGone = (): void => {
    gone = true
    controller?.abort()
  }
  socket.on('data', onData)
  socket.once('end', onGone)
  socket.once('close', onGone)
  if (socket.destroyed || socket.readableEnded) gone = true
  else if (maxBuffer > 0) socket.resume()
  let stopped = false
  return {
    get gone () { return gone },
    get signal () {
      if (controller === undefined) {
        controller = new AbortController()
        if (gone) controller.abort()
      }
      return controller.signal
    },
    stop: () => {
      if (!stopped) {
        stopped = true
        socket.pause()
        socket.removeListener('data', onData)
        socket.removeListener('end', onGone)
        socket.removeListener('close', onGone)
      }
      return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)
    }
  }
}

/** Whether a claimed client can still take an answer: not closed, not ended by an earlier `Connection: close`. */
export function answerable (client: Socket): boolean {
  return !client.destroyed && client.writable && !client.writableEnded
}

/** Whether a claimed client may still wait for one: answerable, and no FIN or close seen (a client that left). */
export function usable (client: Socket, watch: ClientWatch): boolean {
  return !watch.gone && answerable(client)
}

/** Whether a claimed client is still one to serve: `usable`, or only answerable where its FIN is forgiven (matchAndSplice says when). */
export function stillThere (client: Socket, watch: ClientWatch, finForgiven: boolean): boolean {
  return finForgiven ? answerable(client) : usable(client, watch)
}
