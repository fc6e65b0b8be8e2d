import type { Socket } from 'node:net'
import type { NativeEnd, NativeSplicer } from './native-addon'
import type { RelayedBytes, Splice, SpliceOptions, SpliceResult } from './splice'
import { lingerClose } from '../http/linger'
import { answerUnanswered, canAnswerUnanswered, lingers, watchPair } from './pair-watch'
import { giveBackReading, takeOverReading, tcpFd } from './socket-fd'

/**
 * Writes `chunks` and resolves once they, and everything written before
 * them, have been handed to the kernel: write callbacks run in order, so
 * the last one's is enough.
 */
function flush (socket: Socket, chunks: Buffer[]): Promise<void> {
  const some = chunks.filter(c => c.length > 0)
  if (some.length === 0 && socket.writableLength === 0) return Promise.resolve()
  return new Promise(resolve => {
    socket.cork()
    for (const chunk of some.slice(0, -1)) socket.write(chunk)
    // A zero-length write still completes after the ones queued before it.
    socket.write(some.at(-1) ?? Buffer.alloc(0), () => resolve())
    socket.uncork()
  })
}

/**
 * The splice of lib/relay/splice.ts, with the bytes moved by the native
 * addon (docs/performance.md). The same contract: `done` settles once both
 * sockets closed, with the same SpliceResult; `abort()` destroys both;
 * `bytes()` is live. Order on the wire is kept: Node stops reading both
 * sockets first, then what it had read and not delivered, and the replayed
 * head, are written and flushed from JavaScript, and only then does the
 * addon's thread begin.
 *
 * Undefined, with both sockets untouched, when the pair cannot go native:
 * not both plain TCP, or no descriptors left to duplicate (EMFILE).
 */
export function nativeSplice (client: Socket, hidden: Socket, opts: SpliceOptions, splicer: NativeSplicer): Splice | undefined {
  const clientFd = tcpFd(client)
  const hiddenFd = tcpFd(hidden)
  if (clientFd === undefined || hiddenFd === undefined) return undefined
  let slot: number
  try {
    slot = splicer.start(clientFd, hiddenFd, opts.idleTimeout, (why, toHidden, toClient) => onNativeEnd(why, toHidden, toClient))
  } catch {
    return undefined
  }
  const started = Date.now()
  const fromHidden = hidden.bytesWritten
  let fromClient = client.bytesWritten
  const moved = [0, 0]
  let running = true
  let end: SpliceResult['end'] | undefined
  let settle!: (r: SpliceResult) => void
  const done = new Promise<SpliceResult>(resolve => { settle = resolve })

  const bytes = (): RelayedBytes => {
    if (running) splicer.bytes(slot, moved)
    return { toHidden: hidden.bytesWritten - fromHidden + moved[0], toClient: client.bytesWritten - fromClient + moved[1] }
  }
  // Settles as soon as the addon let go and both sockets are destroyed: the server stops counting a socket at destroy(), not at 'close', and callers check their own counts against it.
  let lingering = false
  const finish = (): void => {
    if (!running && (client.destroyed || lingering) && hidden.destroyed) settle({ ...bytes(), end: end ?? 'closed', durationMs: Date.now() - started, ...(lingering ? { lingering } : {}) })
  }
  const onNativeEnd = (why: NativeEnd, toHidden: number, toClient: number): void => {
    running = false
    moved[0] = toHidden
    moved[1] = toClient
    end ??= why
    hidden.destroy()
    closeClient()
    finish()
  }
  const closeClient = (): void => {
    if (end === 'unanswered' && !canAnswerUnanswered(client, bytes().toClient, opts)) end = 'error'
    // The addon cannot say which side failed. A client that did has nothing left to read: its lingering close ends at its first read.
    lingering = end === 'unanswered' || (end === 'error' && lingers(client, opts.lingerTimeout))
    if (!lingering) {
      client.destroy()
      return
    }
    // The addon has let go of the socket: Node may read it again.
    giveBackReading(client)
    // Left as it was by the addon (no FIN passed on): the client can still be told its hidden server never answered.
    if (end === 'unanswered') fromClient += answerUnanswered(client, opts)
    else lingerClose(client, opts.lingerTimeout as number)
  }
  // Before the addon took over, a hidden side that failed is seen here: the addon is only told to stop, and the client answered at its end.
  const onError = (failed: Socket): void => {
    if (failed === hidden && end === undefined && canAnswerUnanswered(client, bytes().toClient, opts)) {
      end = 'unanswered'
      if (running) splicer.abort(slot)
      hidden.destroy()
      return
    }
    fail('error')()
  }
  const fail = (why: SpliceResult['end']) => (): void => {
    end ??= why
    // The addon holds its own descriptors: they close when its thread has let go of them (onNativeEnd).
    // Once it has, the slot is free and may already be another pair's: aborting it then would end that pair.
    if (running) splicer.abort(slot)
    client.destroy()
    hidden.destroy()
  }
  const onIdle = fail('idle')
  const onClose = (): void => {
    // Closed from outside (or by fail): the pair cannot go on, as in the JavaScript splice. Not the hidden side onError let go of.
    if (running && !(end === 'unanswered' && !client.destroyed)) fail('closed')()
    finish()
  }

  const owed = [takeOverReading(client), takeOverReading(hidden)]
  // The idle timer here runs only until the addon takes over, which is soon unless a side does not read what is owed to it.
  watchPair([client, hidden], opts.idleTimeout, { onError, onClose, onIdle })
  const toHidden = [...(opts.first ?? []), owed[0] ?? Buffer.alloc(0)]
  const toClient = [owed[1] ?? Buffer.alloc(0)]
  // go() comes whatever happens: after a failure the thread only sees the abort, and reports the end that settles `done`.
  Promise.all([flush(hidden, toHidden), flush(client, toClient)]).catch(fail('error')).finally(() => {
    for (const s of [client, hidden]) {
      s.setTimeout(0)
      s.removeListener('timeout', onIdle)
    }
    // Only when nothing of the hidden side's went out from here: past the first byte the pipe stays byte-exact.
    splicer.go(slot, canAnswerUnanswered(client, bytes().toClient, opts))
  })
  if (client.destroyed || hidden.destroyed) fail('error')()
  return { done, abort: fail('aborted'), bytes, path: 'native' }
}
