import type { Socket } from 'node:net'
import { defaultSplicePath, splicerFor, type SplicePath } from './native-addon'
import { nativeSplice } from './native-splice'
import { answerUnanswered, canAnswerUnanswered, lingers, watchPair } from './pair-watch'
import { lingerClose } from '../http/linger'

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
    // TLS, or no descriptors left to duplicate: the JavaScript path below.
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

function jsSplice (client: Socket, hidden: Socket, opts: SpliceOptions): Splice {
  const started = Date.now()
  const fromHidden = hidden.bytesWritten
  let fromClient = client.bytesWritten
  const bytes = (): RelayedBytes => ({ toHidden: hidden.bytesWritten - fromHidden, toClient: client.bytesWritten - fromClient })
  let end: SpliceResult['end'] = 'closed'
  let settle!: (r: SpliceResult) => void
  const done = new Promise<SpliceResult>(resolve => { settle = resolve })
  let closed = 0
  let lingering = false
  const finish = (): void => settle({ ...bytes(), end, durationMs: Date.now() - started, ...(lingering ? { lingering } : {}) })

  // In place of an answer the hidden server never began: the client is told so, then closed as a refusal is.
  const answeredInstead = (): boolean => {
    if (end !== 'closed' || !canAnswerUnanswered(client, bytes().toClient + hidden.readableLength, opts)) return false
    end = 'unanswered'
    lingering = true
    hidden.unpipe(client)
    client.unpipe(hidden)
    hidden.destroy()
    fromClient += answerUnanswered(client, opts)
    return true
  }
  // pipe() would pass the FIN on as it is; before the first byte it is an answer never given.
  const onHiddenEnd = (): void => {
    if (!answeredInstead()) client.end()
  }

  const fail = (why: SpliceResult['end']) => (failed?: Socket): void => {
    if (why === 'error' && failed === hidden && answeredInstead()) return
    if (end === 'closed') end = why
    if (why === 'error' && failed === hidden && lingers(client, opts.lingerTimeout)) {
      // What the hidden server sent before it failed is in the client's queue: flushed, then a FIN.
      lingering = true
      hidden.unpipe(client)
      client.unpipe(hidden)
      // Read but held back while the client was slow: part of the answer too.
      for (let chunk = hidden.read() as Buffer | null; chunk !== null; chunk = hidden.read() as Buffer | null) client.write(chunk)
      hidden.destroy()
      lingerClose(client, opts.lingerTimeout as number)
      return
    }
    client.destroy()
    hidden.destroy()
  }
  const onError = fail('error')
  const onIdle = fail('idle')
  const onClose = (): void => {
    if (lingering) {
      // The hidden side closed: the pair is over, and the lingering client closes on its own.
      if (closed++ === 0) finish()
      return
    }
    // A side that closed completely can neither send nor receive; keeping the other open would only leak it.
    // But one whose FIN pipe() passed on may still queue the end of the answer (a half-closed exchange, where
    // one close follows the other's FIN): destroying it would drop that, so it gets out first.
    for (const s of [client, hidden]) {
      if (s.writableEnded && !s.writableFinished && lingers(s, opts.lingerTimeout)) lingerClose(s, opts.lingerTimeout as number)
      else s.destroy()
    }
    if (++closed !== 2) return
    finish()
  }

  if (opts.first !== undefined && opts.first.length > 0) {
    // One writev for the head and whatever came with it.
    hidden.cork()
    for (const chunk of opts.first) if (chunk.length > 0) hidden.write(chunk)
    hidden.uncork()
  }
  watchPair([client, hidden], opts.idleTimeout, { onError, onClose, onIdle })
  // pipe() measured faster than a hand-written pump of one 'data' listener per direction, by 3x with TLS (docs/performance.md).
  client.pipe(hidden)
  hidden.pipe(client, { end: false })
  hidden.once('end', onHiddenEnd)
  // A hidden side already gone (a parked connection that died in the same tick) has not answered either.
  const answered = hidden.destroyed && answeredInstead()
  if (!answered && (client.destroyed || hidden.destroyed)) fail('error')()
  return { done, abort: fail('aborted'), bytes, path: 'js' }
}
