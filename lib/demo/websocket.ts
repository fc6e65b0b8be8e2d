import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { WebSocketServer } from 'ws'

/** The largest message accepted, fragments included; larger ones are closed with 1009. */
export const MAX_MESSAGE = 64 * 1024

export interface Echo {
  /** Completes a WebSocket handshake (or refuses it with 400) and echoes every message back. */
  accept: (req: IncomingMessage, socket: Duplex, head: Buffer) => void
  /** Open WebSockets. */
  readonly open: number
  /** Sends each open WebSocket a close frame with 1001, going away. */
  close: () => void
}

/**
 * The demo page's WebSocket: it says `greeting` first, then sends every
 * message back as it came, text as text and binary as binary, so a browser
 * can check that frames cross the rendezvous both ways unchanged.
 */
export function createEcho (greeting: string): Echo {
  // No compression: what the page sends is what the wire carries, byte for byte.
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE, perMessageDeflate: false })
  wss.on('connection', ws => {
    // A protocol violation is already answered with its close code; nothing is left to do.
    ws.on('error', () => {})
    ws.on('message', (data, isBinary) => ws.send(data as Buffer, { binary: isBinary }))
    ws.send(greeting)
  })
  return {
    accept: (req, socket, head) => wss.handleUpgrade(req, socket, head, ws => wss.emit('connection', ws, req)),
    get open () { return wss.clients.size },
    close: () => { for (const ws of wss.clients) ws.close(1001) }
  }
}
