import type { Socket } from 'node:net'

export interface SpliceOptions {
  /** Destroys the pair after this long without a byte either way, in ms. 0 never does. */
  idleTimeout: number
}

export interface SpliceResult {
  /** Bytes from the mobile client to the hidden server, after the replayed head. */
  toHidden: number
  /** Bytes from the hidden server to the mobile client. */
  toClient: number
  /** What ended it: both sides closed in turn, an error, or the idle timer. */
  end: 'closed' | 'error' | 'idle' | 'aborted'
  durationMs: number
}

export interface Splice {
  done: Promise<SpliceResult>
  /** Destroys both sockets now. */
  abort: () => void
}

/**
 * The one place relayed bytes flow through, so it is the one place to
 * measure and tune. pipe() gives backpressure and carries a FIN across as
 * end(), which keeps half-closed HTTP exchanges working; a reset, an error
 * or a full close on either side destroys both.
 */
export function splice (client: Socket, hidden: Socket, opts: SpliceOptions): Splice {
  const started = Date.now()
  const result: SpliceResult = { toHidden: 0, toClient: 0, end: 'closed', durationMs: 0 }
  let settle!: (r: SpliceResult) => void
  const done = new Promise<SpliceResult>(resolve => { settle = resolve })
  let finished = false
  let closed = 0

  const countToHidden = (chunk: Buffer): void => { result.toHidden += chunk.length }
  const countToClient = (chunk: Buffer): void => { result.toClient += chunk.length }
  const fail = (why: SpliceResult['end']) => (): void => {
    if (result.end === 'closed') result.end = why
    client.destroy()
    hidden.destroy()
  }
  const onError = fail('error')
  const onIdle = fail('idle')
  const onClose = (): void => {
    // A side that closed completely can neither send nor receive; keeping the other open would only leak it.
    client.destroy()
    hidden.destroy()
    if (++closed < 2 || finished) return
    finished = true
    client.removeListener('data', countToHidden)
    hidden.removeListener('data', countToClient)
    for (const s of [client, hidden]) {
      s.removeListener('error', onError)
      s.removeListener('timeout', onIdle)
    }
    result.durationMs = Date.now() - started
    settle(result)
  }

  for (const s of [client, hidden]) {
    // A FIN from one peer must only half-close the pair: the other peer may still be answering.
    s.allowHalfOpen = true
    s.on('error', onError)
    // A socket that closed before the splice began will not emit 'close' again.
    if (s.closed) process.nextTick(onClose)
    else s.once('close', onClose)
    if (opts.idleTimeout > 0) {
      s.setTimeout(opts.idleTimeout)
      s.on('timeout', onIdle)
    }
  }
  client.on('data', countToHidden)
  hidden.on('data', countToClient)
  client.pipe(hidden)
  hidden.pipe(client)
  if (client.destroyed || hidden.destroyed) fail('error')()
  return { done, abort: fail('aborted') }
}
