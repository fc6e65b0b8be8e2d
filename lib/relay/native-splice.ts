import type { Socket } from 'node:net'
import type { NativeEnd, NativeSplicer } from './native-addon'
import type { RelayedBytes, Splice, SpliceOptions, SpliceResult } from './splice'
import { lingerClose } from '../http/linger'
import { answerUnanswered, canAnswerUnanswered, isAnsweredEnd, lingers, watchPair, type AnsweredEnd } from './pair-watch'
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

/** One pair on the native data path: what its steps below share. */
interface NativePair {
  readonly client: Socket
  readonly hidden: Socket
  readonly opts: SpliceOptions
  readonly splicer: NativeSplicer
  /** The addon's slot: free, and maybe another pair's, once `running` is false. */
  slot: number
  readonly started: number
  readonly fromHidden: number
  /** Moved on by the relay's own answer, which is not relayed. */
  fromClient: number
  /** What the addon moved each way, as it last said. */
  readonly moved: number[]
  /** The addon holds the pair: it has not reported its end yet. */
  running: boolean
  end: SpliceResult['end'] | undefined
  /** The client was left to a lingering close. */
  lingering: boolean
  settle: (r: SpliceResult) => void
}

function bytesOf (p: NativePair): RelayedBytes {
  if (p.running) p.splicer.bytes(p.slot, p.moved)
  return { toHidden: p.hidden.bytesWritten - p.fromHidden + p.moved[0], toClient: p.client.bytesWritten - p.fromClient + p.moved[1] }
}

/** Settles as soon as the addon let go and both sockets are destroyed: the server stops counting a socket at destroy(), not at 'close', and callers check their own counts against it. */
function finish (p: NativePair): void {
  if (!p.running && (p.client.destroyed || p.lingering) && p.hidden.destroyed) {
    p.settle({ ...bytesOf(p), end: p.end ?? 'closed', durationMs: Date.now() - p.started, ...(p.lingering ? { lingering: p.lingering } : {}) })
  }
}

function onNativeEnd (p: NativePair, why: NativeEnd, toHidden: number, toClient: number): void {
  p.running = false
  p.moved[0] = toHidden
  p.moved[1] = toClient
  p.end ??= why
  p.hidden.destroy()
  closeClient(p)
  finish(p)
}

/** The end the relay answers the client for itself (a 502 or a 504), if the client can still take it. */
function answeredEnd (p: NativePair): AnsweredEnd | undefined {
  if (!isAnsweredEnd(p.end)) return undefined
  return canAnswerUnanswered(p.client, bytesOf(p).toClient, p.opts) ? p.end : undefined
}

function closeClient (p: NativePair): void {
  const { client, opts } = p
  const answered = answeredEnd(p)
  if (p.end === 'unanswered' && answered === undefined) p.end = 'error'
  // The addon cannot say which side failed. A client that did has nothing left to read: its lingering close ends at its first read.
  p.lingering = answered !== undefined || (p.end === 'error' && lingers(client, opts.lingerTimeout))
  if (!p.lingering) {
    client.destroy()
    return
  }
  // The addon has let go of the socket: Node may read it again.
  giveBackReading(client)
  // Left as it was by the addon (no FIN passed on): the client can still be told its hidden server never answered.
  if (answered !== undefined) p.fromClient += answerUnanswered(client, opts, answered)
  else lingerClose(client, opts.lingerTimeout as number)
}

/**
 * Before the addon took over, a hidden side that failed, or an idle timer,
 * is seen here: the addon is only told to stop, and the client, kept as it
 * is, answered at the pair's end.
 */
function answerAtEnd (p: NativePair, why: AnsweredEnd): boolean {
  if (p.end !== undefined || !canAnswerUnanswered(p.client, bytesOf(p).toClient, p.opts)) return false
  p.end = why
  // The client's own idle timer may be due in the same turn: it must not end what is kept for the answer.
  p.client.setTimeout(0)
  if (p.running) p.splicer.abort(p.slot)
  p.hidden.destroy()
  return true
}

/** Whether the client is kept for the relay's own answer at the pair's end. */
function keepsClient (p: NativePair): boolean {
  return isAnsweredEnd(p.end) && !p.client.destroyed
}

function onError (p: NativePair, failed: Socket): void {
  if (failed === p.hidden && answerAtEnd(p, 'unanswered')) return
  fail(p, 'error')
}

function fail (p: NativePair, why: SpliceResult['end']): void {
  p.end ??= why
  // The addon holds its own descriptors: they close when its thread has let go of them (onNativeEnd).
  // Once it has, the slot is free and may already be another pair's: aborting it then would end that pair.
  if (p.running) p.splicer.abort(p.slot)
  p.client.destroy()
  p.hidden.destroy()
}

function onClose (p: NativePair): void {
  // Closed from outside (or by fail): the pair cannot go on, as in the JavaScript splice. Not the hidden side answerAtEnd let go of.
  if (p.running && !keepsClient(p)) fail(p, 'closed')
  finish(p)
}

/**
 * Writes what JavaScript owes each side, then lets the addon's thread
 * begin. go() comes whatever happens: after a failure the thread only sees
 * the abort, and reports the end that settles `done`.
 */
function flushThenGo (p: NativePair, owed: Array<Buffer | undefined>, onIdle: () => void): void {
  const { client, hidden, opts } = p
  const toHidden = [...(opts.first ?? []), owed[0] ?? Buffer.alloc(0)]
  const toClient = [owed[1] ?? Buffer.alloc(0)]
  Promise.all([flush(hidden, toHidden), flush(client, toClient)]).catch(() => {
    // A hidden side destroyed for an answer at the end fails its flush too: the client it was destroyed for stays.
    if (!keepsClient(p)) fail(p, 'error')
  }).finally(() => {
    for (const s of [client, hidden]) {
      s.setTimeout(0)
      s.removeListener('timeout', onIdle)
    }
    // Only when nothing of the hidden side's went out from here: past the first byte the pipe stays byte-exact.
    p.splicer.go(p.slot, canAnswerUnanswered(client, bytesOf(p).toClient, opts))
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
  let settle!: (r: SpliceResult) => void
  const done = new Promise<SpliceResult>(resolve => { settle = resolve })
  const p: NativePair = { client, hidden, opts, splicer, slot: -1, started: Date.now(), fromHidden: hidden.bytesWritten, fromClient: client.bytesWritten, moved: [0, 0], running: true, end: undefined, lingering: false, settle }
  try {
    p.slot = splicer.start(clientFd, hiddenFd, opts.idleTimeout, (why, toHidden, toClient) => onNativeEnd(p, why, toHidden, toClient))
  } catch {
    return undefined
  }
  const owed = [takeOverReading(client), takeOverReading(hidden)]
  const onIdle = (): void => { if (!answerAtEnd(p, 'idle')) fail(p, 'idle') }
  // The idle timer here runs only until the addon takes over, which is soon unless a side does not read what is owed to it.
  watchPair([client, hidden], opts.idleTimeout, { onError: failed => onError(p, failed), onClose: () => onClose(p), onIdle })
  flushThenGo(p, owed, onIdle)
  if (client.destroyed || hidden.destroyed) fail(p, 'error')
  return { done, abort: () => fail(p, 'aborted'), bytes: () => bytesOf(p), path: 'native' }
}
