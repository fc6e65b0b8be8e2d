// A stand-in for the rendezvous server's hidden side, written from docs/protocol.md
// and independent of lib/, so a wrong token or a wrong head from the agent fails.
import { createHmac, timingSafeEqual } from 'node:crypto'
import { EventEmitter, once } from 'node:events'
import net from 'node:net'
import tls from 'node:tls'
import { tlsCert, tlsKey } from '../helpers/tls'

export type Answer =
  | { kind: 'park', with?: string | Buffer }
  | { kind: 'refuse', status: number, reason?: string, headers?: Record<string, string> }
  | { kind: 'hang' }

export interface FakeOptions {
  id: string
  secret: string
  /** Plain TCP instead of TLS. */
  plain?: boolean
  key?: Buffer
  cert?: Buffer
  port?: number
  host?: string
  /** The answer to the n-th CONNECT (0-based), when its token is good. */
  answer?: (attempt: number) => Answer
}

export interface ConnectRecord {
  at: number
  target: string
  host: string | undefined
  tokenOk: boolean
}

export class FakeRendezvous extends EventEmitter {
  readonly opts: FakeOptions
  readonly connects: ConnectRecord[] = []
  /** Sockets accepted at the TCP (and, with TLS, the handshake) level. */
  sessions = 0
  /** TCP connections, TLS handshake or not. */
  tcp = 0
  extraBytes = 0
  parked: net.Socket[] = []
  readonly sockets = new Set<net.Socket>()
  readonly #nonces = new Set<string>()
  #server!: net.Server
  port = 0

  constructor (opts: FakeOptions) {
    super()
    this.opts = opts
  }

  async listen (): Promise<this> {
    const onSocket = (socket: net.Socket): void => this.#accept(socket)
    this.#server = this.opts.plain === true
      ? net.createServer(onSocket)
      : tls.createServer({ key: this.opts.key ?? tlsKey, cert: this.opts.cert ?? tlsCert }, onSocket)
    this.#server.on('tlsClientError', () => {})
    this.#server.on('connection', () => { this.tcp++ })
    this.#server.listen(this.opts.port ?? 0, this.opts.host ?? '127.0.0.1')
    await once(this.#server, 'listening')
    this.port = (this.#server.address() as net.AddressInfo).port
    return this
  }

  get url (): string {
    return `${this.opts.plain === true ? 'http' : 'https'}://${this.opts.host ?? '127.0.0.1'}:${this.port}`
  }

  get goodConnects (): number {
    return this.connects.filter((c) => c.tokenOk).length
  }

  /** Resolves once `n` sockets are parked. */
  async waitParked (n: number, timeoutMs = 5000): Promise<void> {
    const signal = AbortSignal.timeout(timeoutMs)
    while (this.parked.length < n) {
      await once(this, 'parked', { signal }).catch(() => {
        throw new Error(`only ${this.parked.length} of ${n} parked after ${timeoutMs} ms`)
      })
    }
  }

  /** Plays the mobile side: writes `data` down the oldest parked socket. */
  take (data: string | Buffer): net.Socket {
    const socket = this.parked.shift()
    if (socket === undefined) throw new Error('nothing parked')
    // From here on, bytes from the agent are the hidden server's answer; the caller reads them.
    socket.removeAllListeners('data')
    socket.pause()
    socket.write(data)
    return socket
  }

  async close (): Promise<void> {
    for (const s of this.sockets) s.destroy()
    await new Promise((resolve) => this.#server.close(resolve))
  }

  #accept (socket: net.Socket): void {
    this.sessions++
    this.sockets.add(socket)
    socket.on('error', () => {})
    socket.on('close', () => {
      this.sockets.delete(socket)
      const i = this.parked.indexOf(socket)
      if (i !== -1) this.parked.splice(i, 1)
      this.emit('socketClosed', socket)
    })
    let buf = Buffer.alloc(0)
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk])
      const end = buf.indexOf('\r\n\r\n')
      if (end === -1) return
      socket.off('data', onData)
      socket.pause()
      this.#handle(socket, buf.subarray(0, end).toString('latin1'), buf.length - end - 4)
    }
    socket.on('data', onData)
  }

  #handle (socket: net.Socket, head: string, extra: number): void {
    const [line = '', ...headers] = head.split('\r\n')
    const host = headers.find((h) => /^host:/i.test(h))?.slice(5).trim()
    const m = /^CONNECT uuid:([^?\s]+)\?response=(\S+) HTTP\/1\.1$/.exec(line)
    const tokenOk = m !== null && m[1] === this.opts.id.toLowerCase() && this.#checkToken(m[1], m[2]!)
    const attempt = this.connects.length
    this.connects.push({ at: Date.now(), target: m === null ? line : `uuid:${m[1]}`, host, tokenOk })
    this.emit('connect', attempt)
    if (extra > 0) {
      this.extraBytes += extra
      return refuse(socket, 409, 'Conflict')
    }
    if (!tokenOk) return refuse(socket, 401, 'Unauthorized')
    const answer = this.opts.answer?.(attempt) ?? { kind: 'park' }
    if (answer.kind === 'hang') return
    if (answer.kind === 'refuse') return refuse(socket, answer.status, answer.reason ?? 'Refused', answer.headers)
    if (answer.with !== undefined) {
      socket.write(Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\n\r\n'), Buffer.from(answer.with)]))
      this.emit('takenAtOnce', socket)
      return
    }
    socket.write('HTTP/1.1 200 OK\r\n\r\n')
    this.parked.push(socket)
    // A parked socket that sends anything is broken (docs/protocol.md).
    socket.once('data', () => { this.extraBytes++; socket.destroy() })
    socket.resume()
    this.emit('parked', socket)
  }

  #checkToken (id: string, token: string): boolean {
    const m = /^v1\.(\d{1,16})\.([A-Za-z0-9_-]{16,64})\.([A-Za-z0-9_-]{43})$/.exec(token)
    if (m === null) return false
    const [, seconds, nonce, mac] = m as unknown as [string, string, string, string]
    const expected = createHmac('sha256', base32Decode(this.opts.secret))
      .update(`rendezvous-v1\n${id}\n${seconds}\n${nonce}`).digest()
    const given = Buffer.from(mac, 'base64url')
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return false
    if (Math.abs(Date.now() / 1000 - Number(seconds)) > 120) return false
    if (this.#nonces.has(nonce)) return false
    this.#nonces.add(nonce)
    return true
  }
}

function refuse (socket: net.Socket, status: number, reason: string, headers: Record<string, string> = {}): void {
  const body = `${reason}\n`
  const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')
  socket.end(`HTTP/1.1 ${status} ${reason}\r\n${extra}Content-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`)
}

export function base32Decode (text: string): Buffer {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
  let bits = 0
  let value = 0
  const out: number[] = []
  for (const ch of text) {
    value = (value << 5) | alphabet.indexOf(ch)
    bits += 5
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff)
      bits -= 8
    }
  }
  return Buffer.from(out)
}

export const TEST_ID = '6f1c2a4e-8d3b-4c5a-9e7f-0a1b2c3d4e5f'
// 20 bytes in base32.
export { SECRET as TEST_SECRET } from '../helpers/fixtures'
