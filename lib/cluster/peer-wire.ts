import type { Socket } from 'node:net'

/*
 * The framing of the link between nodes. The asking node sends one line and
 * the request head it received:
 *   RENDEZVOUS-PEER/1 TARGET-NODE ID TOKEN LENGTH\r\n  then LENGTH bytes
 * and the holding node answers one line:
 *   RENDEZVOUS-PEER/1 STATUS REASON\r\n
 * where a 200's reason is `ok CONNID`, the connId of the parked connection
 * it hands over (a node that sends only `ok` gives none).
 * After a 200 the link carries the hidden server's bytes both ways, unchanged.
 */
export const PEER_PROTOCOL = 'RENDEZVOUS-PEER/1'
export const MAX_LINE = 1024
/** Node's own limit on a request head is 16 KiB; what followed it in the same read may add to that. */
export const MAX_PAYLOAD = 1024 * 1024

export interface PeerRequest { target: string, id: string, token: string, length: number }

export function requestLine (r: PeerRequest): string {
  return `${PEER_PROTOCOL} ${r.target} ${r.id} ${r.token} ${r.length}\r\n`
}

export function parseRequestLine (line: string): PeerRequest | undefined {
  const parts = line.split(' ')
  if (parts.length !== 5 || parts[0] !== PEER_PROTOCOL) return undefined
  const [, target, id, token, lengthText] = parts as [string, string, string, string, string]
  const length = Number(lengthText)
  if (!/^\d{1,7}$/.test(lengthText) || length > MAX_PAYLOAD) return undefined
  return { target, id, token, length }
}

export function answerLine (status: number, reason: string): string {
  return `${PEER_PROTOCOL} ${status} ${reason}\r\n`
}

/** The connId a 200 carries (`ok CONNID`), if any. */
export function parseAnswerConnId (line: string): string | undefined {
  return /^RENDEZVOUS-PEER\/1 200 ok ([0-9a-f]{1,32})\r?\n?$/.exec(line)?.[1]
}

export function parseAnswerLine (line: string): number | undefined {
  const match = /^RENDEZVOUS-PEER\/1 (\d{3}) /.exec(line)
  return match === null ? undefined : Number(match[1])
}

/**
 * Reads from `socket` until `complete` says how many bytes make a whole
 * frame, then pauses the socket and gives back whatever came after, so the
 * next reader (or the splice) sees every byte. Rejects on close, on timeout
 * and past `max` bytes.
 */
export function readFrame (socket: Socket, complete: (buffered: Buffer) => number | undefined, timeoutMs: number, max = MAX_LINE + MAX_PAYLOAD): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let buffered: Buffer = Buffer.alloc(0)
    const finish = (err: Error | undefined, end = 0): void => {
      clearTimeout(timer)
      socket.removeListener('data', onData)
      socket.removeListener('close', onClose)
      socket.removeListener('end', onClose)
      socket.pause()
      if (err !== undefined) return reject(err)
      if (end < buffered.length) socket.unshift(buffered.subarray(end))
      resolve(buffered.subarray(0, end))
    }
    const onData = (chunk: Buffer): void => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk])
      const end = complete(buffered)
      if (end !== undefined) finish(undefined, end)
      else if (buffered.length > max) finish(new Error('peer frame too large'))
    }
    const onClose = (): void => finish(new Error('peer link closed'))
    const timer = setTimeout(() => finish(new Error('peer link timed out')), timeoutMs)
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
