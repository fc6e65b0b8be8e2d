import { createHash } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { TextDecoder } from 'node:util'

/*
 * The server side of RFC 6455, just enough for the demo: it completes the
 * handshake and echoes every message back, text as text and binary as
 * binary. It answers pings and closes cleanly, and refuses what the RFC says
 * to refuse. ws is only a devDependency, and the demo needs none of the rest.
 */

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'
/** The largest message accepted, fragments included; larger ones are closed with 1009. */
export const MAX_MESSAGE = 64 * 1024
const CLOSE_LINGER_MS = 1000

const OP_CONTINUATION = 0x0
const OP_TEXT = 0x1
const OP_BINARY = 0x2
const OP_CLOSE = 0x8
const OP_PING = 0x9
const OP_PONG = 0xa

const utf8 = new TextDecoder('utf-8', { fatal: true })

export interface EchoOptions {
  /** A text message sent as soon as the connection opens, so the peer sees the server speak first. */
  greeting?: string
}

export interface EchoSocket {
  /** Sends a close frame (default 1001, going away) and ends the connection. */
  close: (code?: number) => void
}

/** Sec-WebSocket-Accept for a Sec-WebSocket-Key. */
export function acceptKey (key: string): string {
  return createHash('sha1').update(key + GUID).digest('base64')
}

/**
 * Answers an Upgrade request: a 101 and an echo loop when it is a valid
 * WebSocket handshake, else a 400 (426 for another protocol version) and a
 * close. Resolves nothing; returns the connection, or undefined when refused.
 */
export function acceptEcho (req: IncomingMessage, socket: Duplex, head: Buffer, opts: EchoOptions = {}): EchoSocket | undefined {
  socket.on('error', () => socket.destroy())
  const problem = handshakeProblem(req)
  if (problem !== undefined) {
    const extra = problem.status === 426 ? 'Sec-WebSocket-Version: 13\r\n' : ''
    const body = `${problem.message}\n`
    socket.end(`HTTP/1.1 ${problem.status} ${problem.status === 426 ? 'Upgrade Required' : 'Bad Request'}\r\n` +
      `Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}Connection: close\r\n\r\n${body}`)
    return undefined
  }
  socket.write('HTTP/1.1 101 Switching Protocols\r\n' +
    'Upgrade: websocket\r\n' +
    'Connection: Upgrade\r\n' +
    `Sec-WebSocket-Accept: ${acceptKey(String(req.headers['sec-websocket-key']))}\r\n\r\n`)
  return echo(socket, head, opts)
}

function handshakeProblem (req: IncomingMessage): { status: 400 | 426, message: string } | undefined {
  if (req.method !== 'GET') return { status: 400, message: 'a WebSocket handshake is a GET' }
  if (!hasToken(req.headers.upgrade, 'websocket')) return { status: 400, message: 'Upgrade must be websocket' }
  if (!hasToken(req.headers.connection, 'upgrade')) return { status: 400, message: 'Connection must include Upgrade' }
  if (req.headers['sec-websocket-version'] !== '13') return { status: 426, message: 'only WebSocket version 13 is spoken here' }
  const key = req.headers['sec-websocket-key']
  if (typeof key !== 'string' || !/^[A-Za-z0-9+/]{22}==$/.test(key)) return { status: 400, message: 'Sec-WebSocket-Key must be 16 bytes in base64' }
  return undefined
}

function hasToken (value: string | undefined, token: string): boolean {
  return value !== undefined && value.split(',').some(part => part.trim().toLowerCase() === token)
}

/** Encodes one unmasked, final frame: servers never mask (RFC 6455 §5.1). */
export function encodeFrame (opcode: number, payload: Buffer): Buffer {
  const length = payload.length
  let header: Buffer
  if (length < 126) {
    header = Buffer.from([0x80 | opcode, length])
  } else if (length < 0x10000) {
    header = Buffer.alloc(4)
    header[0] = 0x80 | opcode
    header[1] = 126
    header.writeUInt16BE(length, 2)
  } else {
    header = Buffer.alloc(10)
    header[0] = 0x80 | opcode
    header[1] = 127
    header.writeBigUInt64BE(BigInt(length), 2)
  }
  return Buffer.concat([header, payload])
}

function closePayload (code: number): Buffer {
  const payload = Buffer.alloc(2)
  payload.writeUInt16BE(code, 0)
  return payload
}

function echo (socket: Duplex, head: Buffer, opts: EchoOptions): EchoSocket {
  let buffered: Buffer = Buffer.alloc(0)
  let fragments: Buffer[] = []
  let fragmentOpcode = 0
  let fragmentSize = 0
  let closing = false

  const send = (opcode: number, payload: Buffer): void => {
    if (!closing && socket.writable) socket.write(encodeFrame(opcode, payload))
  }

  // Sends our close frame once, then ends; a peer that never closes its side is cut after a moment.
  const close = (payload: Buffer): void => {
    if (closing) return
    if (socket.writable) socket.write(encodeFrame(OP_CLOSE, payload))
    closing = true
    socket.end()
    const timer = setTimeout(() => socket.destroy(), CLOSE_LINGER_MS)
    timer.unref()
    socket.once('close', () => clearTimeout(timer))
  }
  const fail = (code: number): void => close(closePayload(code))

  const deliver = (opcode: number, payload: Buffer): void => {
    if (opcode === OP_TEXT) {
      try {
        utf8.decode(payload)
      } catch {
        fail(1007)
        return
      }
    }
    send(opcode, payload)
  }

  const onFrame = (fin: boolean, opcode: number, payload: Buffer): void => {
    switch (opcode) {
      case OP_CONTINUATION:
        if (fragments.length === 0) return fail(1002)
        fragments.push(payload)
        fragmentSize += payload.length
        if (fragmentSize > MAX_MESSAGE) return fail(1009)
        if (fin) {
          const message = Buffer.concat(fragments)
          fragments = []
          fragmentSize = 0
          deliver(fragmentOpcode, message)
        }
        return
      case OP_TEXT:
      case OP_BINARY:
        if (fragments.length > 0) return fail(1002)
        if (fin) return deliver(opcode, payload)
        fragments = [payload]
        fragmentOpcode = opcode
        fragmentSize = payload.length
        return
      case OP_CLOSE: {
        // Echo the peer's status code, as §5.5.1 suggests; a one-byte body is malformed.
        if (payload.length === 1) return fail(1002)
        return close(payload.subarray(0, Math.min(payload.length, 2)))
      }
      case OP_PING:
        return send(OP_PONG, payload)
      case OP_PONG:
        return
      default:
        return fail(1002)
    }
  }

  // Takes whole frames off the front of the buffer; returns false when it needs more bytes.
  const takeFrame = (): boolean => {
    if (buffered.length < 2) return false
    const b0 = buffered[0]
    const b1 = buffered[1]
    const fin = (b0 & 0x80) !== 0
    const opcode = b0 & 0x0f
    let length = b1 & 0x7f
    let offset = 2
    if ((b0 & 0x70) !== 0 || (b1 & 0x80) === 0) {
      // No extension was negotiated, and clients must mask (§5.1).
      fail(1002)
      return false
    }
    if (opcode >= OP_CLOSE && (!fin || length > 125)) {
      fail(1002)
      return false
    }
    if (length === 126) {
      if (buffered.length < 4) return false
      length = buffered.readUInt16BE(2)
      offset = 4
    } else if (length === 127) {
      if (buffered.length < 10) return false
      const big = buffered.readBigUInt64BE(2)
      if (big > BigInt(MAX_MESSAGE)) {
        fail(1009)
        return false
      }
      length = Number(big)
      offset = 10
    }
    if (length > MAX_MESSAGE) {
      fail(1009)
      return false
    }
    if (buffered.length < offset + 4 + length) return false
    const mask = buffered.subarray(offset, offset + 4)
    const payload = Buffer.from(buffered.subarray(offset + 4, offset + 4 + length))
    for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i & 3]
    buffered = buffered.subarray(offset + 4 + length)
    onFrame(fin, opcode, payload)
    return !closing
  }

  const onData = (chunk: Buffer): void => {
    if (closing) return
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk])
    while (takeFrame());
  }

  socket.on('data', onData)
  // An HTTP server may have paused the socket while it parsed the handshake.
  socket.resume()
  // The peer went away without a close frame: nothing is left to say.
  socket.on('end', () => { if (!closing) socket.end() })
  if (opts.greeting !== undefined) send(OP_TEXT, Buffer.from(opts.greeting))
  if (head.length > 0) onData(head)
  return { close: (code = 1001) => close(closePayload(code)) }
}
