import type { Socket } from 'node:net'

export interface PairWatchers {
  /** `socket` is the one that failed. */
  onError: (socket: Socket) => void
  onClose: () => void
  onIdle: () => void
}

/**
 * What both data paths of the splice set on the two sockets before a byte
 * moves, so that they end a pair for the same reasons.
 */
export function watchPair (sockets: readonly Socket[], idleTimeout: number, on: PairWatchers): void {
  for (const s of sockets) {
    // A FIN from one peer must only half-close the pair: the other peer may still be answering.
    s.allowHalfOpen = true
    s.setNoDelay(true)
    s.on('error', () => on.onError(s))
    // A socket that closed before the splice began will not emit 'close' again.
    if (s.closed) process.nextTick(on.onClose)
    else s.once('close', on.onClose)
    if (idleTimeout > 0) {
      s.setTimeout(idleTimeout)
      // Once is enough: the first idle timeout ends the pair.
      s.once('timeout', on.onIdle)
    }
  }
}

/** Whether a client whose hidden server failed gets a lingering close rather than a reset. */
export function lingers (client: Socket, lingerTimeout: number | undefined): boolean {
  return (lingerTimeout ?? 0) > 0 && !client.destroyed
}
