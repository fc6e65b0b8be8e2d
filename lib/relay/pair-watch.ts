import type { Socket } from 'node:net'
import { lingerClose } from '../http/linger'
import { refusalBytes } from '../http/refusals'
import type { SpliceOptions } from './splice'

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

/** The body of the 502 a client gets when its hidden server closed or failed before answering (docs/protocol.md). */
export const UNANSWERED_MESSAGE = 'the hidden server closed the connection before it answered'

/** The body of the 504 a client gets when the idle timeout ended its pair before its hidden server answered (docs/protocol.md). */
export const IDLE_MESSAGE = 'the hidden server did not answer before the idle timeout'

/**
 * Why a client is answered by the relay in place of its hidden server, by
 * the pair's end: the hidden side closed or failed (502), or the idle
 * timeout ended the pair (504), before its first byte to the client.
 */
export type AnsweredEnd = 'unanswered' | 'idle'

const ANSWERS: Record<AnsweredEnd, { status: number, message: string }> = {
  unanswered: { status: 502, message: UNANSWERED_MESSAGE },
  idle: { status: 504, message: IDLE_MESSAGE }
}

/** Whether a pair's end is one the relay answers for the hidden server (see AnsweredEnd). */
export function isAnsweredEnd (end: string | undefined): end is AnsweredEnd {
  return end === 'unanswered' || end === 'idle'
}

/**
 * Whether the client can still be told, in place of an answer, that its
 * hidden server did not answer: its caller asked for it, not a byte of the
 * hidden server's reached the client on this pair (`toClient`), and the
 * client can still take bytes. Past the first byte the pipe stays
 * byte-exact, and a client that left gets nothing.
 */
export function canAnswerUnanswered (client: Socket, toClient: number, opts: SpliceOptions): boolean {
  return opts.unanswered !== undefined && toClient === 0 && !client.destroyed && client.writable
}

/**
 * Answers the client `502 Bad Gateway`, or `504 Gateway Timeout` for an
 * idle end, in the relay's refusal form, then closes it lingering, as any
 * refusal: what it still sends is read and dropped. Returns what that
 * added to the client's bytesWritten: the relay's own bytes, which the
 * pair must not count as relayed.
 */
export function answerUnanswered (client: Socket, opts: SpliceOptions, end: AnsweredEnd = 'unanswered'): number {
  const answer = refusalBytes({ ...ANSWERS[end], headOnly: opts.unanswered?.headOnly === true })
  const before = client.bytesWritten
  // The pair's idle timer no longer applies: the linger bounds what is left of the client.
  client.setTimeout(0)
  lingerClose(client, opts.lingerTimeout ?? 0, answer)
  return client.bytesWritten - before
}
