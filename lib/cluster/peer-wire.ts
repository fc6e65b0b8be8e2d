import type { Socket } from 'node:net'

/*
 * The framing of the link between nodes. The asking node sends one line and
 * the request head it received:
 *   RENDEZVOUS-PEER/2 TARGET-NODE ID TOKEN LENGTH\r\n  then LENGTH bytes
 * and the holding node answers one line:
 *   RENDEZVOUS-PEER/2 STATUS REASON\r\n
 * where a 200's reason is `ok CONNID`, the connId of the parked connection
 * it reserved for this link (a node that sends only `ok` gives none).
 * A 200 only reserves: the holding node writes nothing to the hidden server
 * until the asking node takes the link with one more line,
 *   GO\r\n
 * after which the link carries the hidden server's bytes both ways,
 * unchanged, the head first. An asking node that no longer wants the
 * connection (its client stopped waiting, it gave up on a slow answer)
 * closes the link instead, and the holding node parks the connection again
 * unused. So a request reaches a hidden server at most once, and only while
 * its client waits. Version 1 delivered the head at once, with no GO; the
 * two never serve each other.
 * LENGTH is at most MAX_PAYLOAD: what the asking node has beyond that (a
 * head Node was configured to accept larger) follows its GO, as the rest of
 * the client's bytes do. A larger LENGTH is refused before it is read.
 */
export const PEER_VERSION = '2'
export const PEER_PROTOCOL = `RENDEZVOUS-PEER/${PEER_VERSION}`
/** What both ends add when they meet a node of another version. */
export const VERSION_HINT = ' (nodes of different versions do not forward to each other: upgrade the rest)'
/** The asking node's commitment to a reserved connection. */
export const GO_LINE = 'GO\r\n'
export const MAX_LINE = 1024
/**
 * The most a request may carry before GO. A node sends the head it rebuilt
 * and the bytes Node read with it. With Node's defaults the head is under
 * 21 KiB (16 KiB of URL, names and values, plus ': ' and CRLF for each of
 * at most 999 fields) and one read is at most 64 KiB; every byte past this
 * limit goes after GO instead, so a node of this version never sends more,
 * and older ones did not with Node's defaults. Each link waiting to
 * authenticate may hold this much.
 */
export const MAX_PAYLOAD = 128 * 1024

export interface PeerRequest { target: string, id: string, token: string, length: number }

export function requestLine (r: PeerRequest): string {
  return `${PEER_PROTOCOL} ${r.target} ${r.id} ${r.token} ${r.length}\r\n`
}

export function parseRequestLine (line: string): PeerRequest | undefined {
  const parts = line.split(' ')
  if (parts.length !== 5 || parts[0] !== PEER_PROTOCOL) return undefined
  const [, target, id, token, lengthText] = parts as [string, string, string, string, string]
  // Over MAX_PAYLOAD is the reader's to refuse, with its own answer.
  if (!/^\d{1,7}$/.test(lengthText)) return undefined
  return { target, id, token, length: Number(lengthText) }
}

/**
 * The version a line of the peer protocol names (`1` for
 * `RENDEZVOUS-PEER/1 ...`), or undefined when it is not one: a node of
 * another version is told so, rather than that it sent garbage.
 */
export function peerVersionOf (line: string): string | undefined {
  return /^RENDEZVOUS-PEER\/(\d{1,3}) /.exec(line)?.[1]
}

export function answerLine (status: number, reason: string, protocol = PEER_PROTOCOL): string {
  return `${protocol} ${status} ${reason}\r\n`
}

// Answers of this version only: another version's framing is told apart by peerVersionOf.
const ANSWER = new RegExp(`^RENDEZVOUS-PEER/${PEER_VERSION} (\\d{3}) `)
const CONN_ID = new RegExp(`^RENDEZVOUS-PEER/${PEER_VERSION} 200 ok ([0-9a-f]{1,32})\\r?\\n?$`)

/** The connId a 200 carries (`ok CONNID`), if any. */
export function parseAnswerConnId (line: string): string | undefined {
  return CONN_ID.exec(line)?.[1]
}

export function parseAnswerLine (line: string): number | undefined {
  const match = ANSWER.exec(line)
  return match === null ? undefined : Number(match[1])
}

/** Whether `buffered` opens with a TLS record (a handshake or an alert): TLS where plain text was expected. */
export function looksLikeTls (buffered: Buffer): boolean {
  // Record type 0x15 (alert) or 0x16 (handshake), then major version 3.
  return buffered.length >= 2 && (buffered[0] === 0x15 || buffered[0] === 0x16) && buffered[1] === 0x03
}

/**
 * Reads from `socket` until `complete` says how many bytes make a whole
 * frame, then pauses the socket and gives back whatever came after, so the
 * next reader (or the splice) sees every byte. Rejects on close, on timeout
 * and past `max` bytes. For short frames (lines): `complete` sees all that
 * came at each chunk, and copying that again is cheap only because `max` is small.
 */
export function readFrame (socket: Socket, complete: (buffered: Buffer) => number | undefined, timeoutMs: number, max = MAX_LINE): Promise<Buffer> {
  let buffered: Buffer = Buffer.alloc(0)
  return readUntil(socket, timeoutMs, chunk => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk])
    const end = complete(buffered)
    if (end !== undefined) return end
    if (buffered.length > max) throw new Error('peer frame too large')
    return undefined
  }, () => buffered)
}

/**
 * Reads exactly `length` bytes (a payload whose length a line declared),
 * then pauses the socket and gives back whatever came after. The chunks
 * are kept as they came and joined once, at the end.
 */
export function readBytes (socket: Socket, length: number, timeoutMs: number): Promise<Buffer> {
  if (length === 0) return Promise.resolve(Buffer.alloc(0))
  const chunks: Buffer[] = []
  let total = 0
  return readUntil(socket, timeoutMs, chunk => {
    chunks.push(chunk)
    total += chunk.length
    return total >= length ? length : undefined
  }, () => chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total))
}

/**
 * The reading both frames share: `step` takes each chunk and says where the
 * frame ends, once it does; `all` gives what came so far, in one buffer.
 */
function readUntil (socket: Socket, timeoutMs: number, step: (chunk: Buffer) => number | undefined, all: () => Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let done = false
    let late: NodeJS.Immediate | undefined
    const finish = (err: Error | undefined, end = 0): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      if (late !== undefined) clearImmediate(late)
      socket.removeListener('data', onData)
      socket.removeListener('close', onClose)
      socket.removeListener('end', onClose)
      socket.pause()
      if (err !== undefined) return reject(err)
      const buffered = all()
      if (end < buffered.length) socket.unshift(buffered.subarray(end))
      resolve(buffered.subarray(0, end))
    }
    const onData = (chunk: Buffer): void => {
      try {
        const end = step(chunk)
        if (end !== undefined) finish(undefined, end)
      } catch (err) {
        finish(err as Error)
      }
    }
    const onClose = (): void => finish(new Error('peer link closed'))
    // A process that was stopped (SIGSTOP, swapping) runs its due timers before it reads what arrived meanwhile:
    // one turn of the event loop lets a frame that is already there count.
    const timer = setTimeout(() => { late = setImmediate(() => finish(new Error('peer link timed out'))) }, timeoutMs)
    socket.on('data', onData)
    socket.once('close', onClose)
    socket.once('end', onClose)
    socket.resume()
  })
}

/** A frame that is one line: its length including CRLF, once the CRLF is there. */
export function lineEnd (buffered: Buffer): number | undefined {
  const at = buffered.indexOf('\r\n')
  return at === -1 ? undefined : at + 2
}
