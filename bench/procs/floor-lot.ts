import type net from 'node:net'

/*
 * The parking of the bench's two floors (floor-relay.ts, floor-http.ts):
 * the newest parked connection serves the next client, and a client that
 * comes before any CONNECT waits for the next one. Nothing is checked.
 */
export const CONNECT_OK = Buffer.from('HTTP/1.1 200 Connection established\r\n\r\n')
const parked: net.Socket[] = []
const waiting: Array<(hidden: net.Socket) => void> = []

/** Answers a CONNECT's socket 200 and parks it, or hands it to a waiting client. */
export function park (socket: net.Socket): void {
  socket.write(CONNECT_OK)
  const waiter = waiting.shift()
  if (waiter !== undefined) return waiter(socket)
  parked.push(socket)
}

/** Calls `pair` with the newest parked connection, now or once one parks. */
export function claim (pair: (hidden: net.Socket) => void): void {
  let hidden = parked.pop()
  // One that closed while parked is dropped here rather than tracked.
  while (hidden?.destroyed === true) hidden = parked.pop()
  if (hidden !== undefined) pair(hidden)
  else waiting.push(pair)
}

/**
 * Writes `head` down `hidden` and pipes its answer back to `client`, and the
 * client's further bytes to it unless `oneWay`: a client socket still held
 * by node:http's parser carries one request and nothing after it. Either
 * side closing closes both.
 */
export function pair (client: net.Socket, head: Buffer, hidden: net.Socket, oneWay = false): void {
  const kill = (): void => { client.destroy(); hidden.destroy() }
  hidden.on('close', kill)
  client.on('close', kill)
  hidden.write(head)
  if (!oneWay) client.pipe(hidden)
  hidden.pipe(client)
}
