import type { Socket } from 'node:net'
import { defaultSplicePath, splicerFor, type SplicePath } from './native-addon'
import { jsSplice } from './js-splice'
import { nativeSplice } from './native-splice'

export interface SpliceOptions {
  /** Destroys the pair after this long without a byte either way, in ms. 0 never does. */
  idleTimeout: number
  /** Bytes for the hidden server before anything the client sends next: the replayed head and what followed it. Counted as relayed. */
  first?: Buffer[]
  /** Which data path: native (splice(2) in the addon) where it is loaded and both sockets are plain TCP, or JavaScript. Default RENDEZVOUS_SPLICE, else auto. */
  path?: SplicePath
  /**
   * After the hidden side fails (a reset, an error), how long the client may
   * go on sending, read and dropped, before its socket closes, in ms: it
   * gets what the hidden side sent, then a FIN, first (lingerClose). 0 or
   * absent destroys it at once.
   */
  lingerTimeout?: number
  /**
   * When the hidden side ends (a FIN) or fails (a reset, an error) before
   * it has sent the client a byte, the client is answered `502 Bad Gateway`
   * rather than closed with nothing, then closed lingering; `headOnly` for
   * a HEAD request. Absent: the client gets the end as it is, as a node
   * relaying for another does, whose own splice answers its client.
   */
  unanswered?: { headOnly?: boolean }
}

export interface RelayedBytes {
  /** Bytes from the mobile client to the hidden server, the replayed head included. */
  toHidden: number
  /** Bytes from the hidden server to the mobile client. */
  toClient: number
}

export interface SpliceResult extends RelayedBytes {
  /**
   * What ended it: both sides closed in turn, an error, the idle timer, the
   * relay's abort, or a hidden side that closed or failed before answering,
   * its client answered 502 (`unanswered`).
   */
  end: 'closed' | 'error' | 'idle' | 'aborted' | 'unanswered'
  durationMs: number
  /** The client was left to a lingering close, after the hidden side failed. */
  lingering?: boolean
}

export interface Splice {
  done: Promise<SpliceResult>
  /** Destroys both sockets now. */
  abort: () => void
  /** Bytes relayed so far, read from the sockets' own counters: free, whenever it is asked. */
  bytes: () => RelayedBytes
  /** The data path it took. */
  path: 'native' | 'js'
}

/**
 * The one place relayed bytes flow through, so it is the one place to
 * measure and tune. A FIN only half-closes the pair, which keeps
 * half-closed HTTP exchanges working; a reset, an error or a full close on
 * either side destroys both, except that a client whose hidden server
 * failed, or a side still flushing what came before its FIN, gets a
 * lingering close (`lingerTimeout`), and one whose hidden server ended or
 * failed before its first byte a 502 first (`unanswered`). `done` settles when the
 * pair is over: both sockets destroyed, or the hidden one destroyed and the
 * client lingering. pipe() gives backpressure and carries a FIN
 * across as end(). Bytes are counted from the sockets' bytesWritten, which
 * Node keeps anyway, rather than with a listener per chunk.
 */
export function splice (client: Socket, hidden: Socket, opts: SpliceOptions): Splice {
  const native = splicerFor(opts.path ?? defaultSplicePath())
  if (native !== undefined) {
    // TLS, or no descriptors left to duplicate: the JavaScript path.
    const spliced = nativeSplice(client, hidden, opts, native)
    if (spliced !== undefined) return spliced
  }
  return jsSplice(client, hidden, opts)
}

/**
 * Waits for `pair` to be over and takes it out of `open`, the set a
 * shutdown aborts; a client left to a lingering close stays in it until it
 * closes, so that the shutdown's grace bounds the linger too.
 */
export async function untilOver<T extends Splice> (open: Set<T>, pair: T, client: Socket): Promise<SpliceResult> {
  const result = await pair.done
  if (result.lingering === true && !client.destroyed) client.once('close', () => open.delete(pair))
  else open.delete(pair)
  return result
}
