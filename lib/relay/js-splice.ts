import type { Socket } from 'node:net'
import type { RelayedBytes, Splice, SpliceOptions, SpliceResult } from './splice'
import { answerUnanswered, canAnswerUnanswered, lingers, watchPair, type AnsweredEnd } from './pair-watch'
import { lingerClose } from '../http/linger'

/** One pair on the JavaScript data path: what its steps below share. */
interface JsPair {
  readonly client: Socket
  readonly hidden: Socket
  readonly opts: SpliceOptions
  readonly started: number
  /** The sockets' bytesWritten when the pair began: what they wrote before is not this pair's. */
  readonly fromHidden: number
  /** Moved on by the relay's own answer, which is not relayed either. */
  fromClient: number
  end: SpliceResult['end']
  /** How many of the two sockets closed. */
  closed: number
  /** The client was left to a lingering close. */
  lingering: boolean
  settle: (r: SpliceResult) => void
}

function bytesOf (p: JsPair): RelayedBytes {
  return { toHidden: p.hidden.bytesWritten - p.fromHidden, toClient: p.client.bytesWritten - p.fromClient }
}

function finish (p: JsPair): void {
  p.settle({ ...bytesOf(p), end: p.end, durationMs: Date.now() - p.started, ...(p.lingering ? { lingering: p.lingering } : {}) })
}

/** Stops the bytes both ways, for the client to get something else than its hidden server's. */
function unpipe (p: JsPair): void {
  p.hidden.unpipe(p.client)
  p.client.unpipe(p.hidden)
}

/**
 * In place of an answer the hidden server never began, because it ended
 * or failed (`unanswered`) or stayed silent until the idle timeout
 * (`idle`): the client is told so, then closed as a refusal is.
 */
function answeredInstead (p: JsPair, why: AnsweredEnd = 'unanswered'): boolean {
  if (p.end !== 'closed' || !canAnswerUnanswered(p.client, bytesOf(p).toClient + p.hidden.readableLength, p.opts)) return false
  p.end = why
  p.lingering = true
  unpipe(p)
  p.hidden.destroy()
  p.fromClient += answerUnanswered(p.client, p.opts, why)
  return true
}

/** pipe() would pass the FIN on as it is; before the first byte it is an answer never given. */
function onHiddenEnd (p: JsPair): void {
  if (!answeredInstead(p)) p.client.end()
}

/** What the hidden server sent before it failed is in the client's queue: flushed, then a FIN. */
function lingerAfterHidden (p: JsPair): void {
  p.lingering = true
  unpipe(p)
  // Read but held back while the client was slow: part of the answer too.
  for (let chunk = p.hidden.read() as Buffer | null; chunk !== null; chunk = p.hidden.read() as Buffer | null) p.client.write(chunk)
  p.hidden.destroy()
  lingerClose(p.client, p.opts.lingerTimeout as number)
}

/** Ends the pair for `why`; `failed` is the socket that failed, when one did. */
function fail (p: JsPair, why: SpliceResult['end'], failed?: Socket): void {
  const hiddenFailed = why === 'error' && failed === p.hidden
  if (hiddenFailed && answeredInstead(p)) return
  if (p.end === 'closed') p.end = why
  if (hiddenFailed && lingers(p.client, p.opts.lingerTimeout)) {
    lingerAfterHidden(p)
    return
  }
  p.client.destroy()
  p.hidden.destroy()
}

function onClose (p: JsPair): void {
  if (p.lingering) {
    // The hidden side closed: the pair is over, and the lingering client closes on its own.
    if (p.closed++ === 0) finish(p)
    return
  }
  // A side that closed completely can neither send nor receive; keeping the other open would only leak it.
  // But one whose FIN pipe() passed on may still queue the end of the answer (a half-closed exchange, where
  // one close follows the other's FIN): destroying it would drop that, so it gets out first.
  for (const s of [p.client, p.hidden]) {
    if (s.writableEnded && !s.writableFinished && lingers(s, p.opts.lingerTimeout)) lingerClose(s, p.opts.lingerTimeout as number)
    else s.destroy()
  }
  if (++p.closed !== 2) return
  finish(p)
}

/** One writev for the head and whatever came with it. */
function writeFirst (hidden: Socket, first: Buffer[] | undefined): void {
  if (first === undefined || first.length === 0) return
  hidden.cork()
  for (const chunk of first) if (chunk.length > 0) hidden.write(chunk)
  hidden.uncork()
}

/** The splice of splice.ts on the JavaScript data path, which every TLS pair takes. */
export function jsSplice (client: Socket, hidden: Socket, opts: SpliceOptions): Splice {
  let settle!: (r: SpliceResult) => void
  const done = new Promise<SpliceResult>(resolve => { settle = resolve })
  const p: JsPair = { client, hidden, opts, started: Date.now(), fromHidden: hidden.bytesWritten, fromClient: client.bytesWritten, end: 'closed', closed: 0, lingering: false, settle }
  writeFirst(hidden, opts.first)
  watchPair([client, hidden], opts.idleTimeout, {
    onError: failed => fail(p, 'error', failed),
    onClose: () => onClose(p),
    onIdle: () => { if (!answeredInstead(p, 'idle')) fail(p, 'idle') }
  })
  // pipe() measured faster than a hand-written pump of one 'data' listener per direction, by 3x with TLS (docs/performance.md).
  client.pipe(hidden)
  hidden.pipe(client, { end: false })
  hidden.once('end', () => onHiddenEnd(p))
  // A hidden side already gone (a parked connection that died in the same tick) has not answered either.
  const answered = hidden.destroyed && answeredInstead(p)
  if (!answered && (client.destroyed || hidden.destroyed)) fail(p, 'error')
  return { done, abort: () => fail(p, 'aborted'), bytes: () => bytesOf(p), path: 'js' }
}
