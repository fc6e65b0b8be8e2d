/*
 * How a hidden server lets a parked connection go without losing a request
 * the rendezvous may be writing into it at that very moment (closing it
 * would): it sends an interim `100 Continue` answer. A parked connection must
 * not send a byte, so the rendezvous closes it; but if a client was matched
 * to it meanwhile, the hidden server gets that request and answers it, and
 * the client reads the 100 as the interim answer HTTP/1.1 clients must skip.
 * (An HTTP/1.0 client or a WebSocket handshake that meets this race fails,
 * as it would on a closed connection; the others are served.)
 */
export const RETIREMENT = Buffer.from('HTTP/1.1 100 Continue\r\n\r\n', 'latin1')

// Enough of the answer to tell it from a broken hidden server's bytes.
const DISTINCT = 'HTTP/1.1 100 '.length

/**
 * Whether the first bytes a parked connection sent are the retirement answer,
 * not a broken hidden server's. The relay closes the connection on its first
 * read, so a proxy or TLS layer that split the answer leaves only its start.
 */
export function isRetirement (chunk: Buffer): boolean {
  return chunk.length >= DISTINCT && chunk.length <= RETIREMENT.length && RETIREMENT.subarray(0, chunk.length).equals(chunk)
}
