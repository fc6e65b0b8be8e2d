import { connect as netConnect, type Socket } from 'node:net'
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls'
import { tlsCert } from './tls'

/**
 * Whether `socket` failed one of its own writes. Node then destroys it, with
 * what it had received and not yet read: a test client that is still
 * uploading when the relay closes it loses an answer the relay did deliver.
 */
export function watchWriteFailure (socket: Socket): () => boolean {
  let failed = false
  socket.on('error', err => { if ((err as NodeJS.ErrnoException).syscall === 'write') failed = true })
  return () => failed
}

/** A raw client socket that records every byte it receives, so tests can assert on exact bytes. */
export class WireClient {
  readonly socket: Socket
  received = Buffer.alloc(0)
  ended = false
  closed = false
  readonly #waiters: Array<() => void> = []

  constructor (socket: Socket) {
    this.socket = socket
    socket.on('data', chunk => {
      this.received = Buffer.concat([this.received, chunk])
      this.#wake()
    })
    socket.on('end', () => { this.ended = true; this.#wake() })
    socket.on('close', () => { this.closed = true; this.#wake() })
    socket.on('error', () => {})
  }

  get text (): string {
    return this.received.toString('latin1')
  }

  write (data: string | Buffer): void {
    this.socket.write(data)
  }

  /** Resolves when `test` holds for what was received so far; rejects after `ms`. */
  async until (test: (c: WireClient) => boolean, ms = 5000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + ms
    while (!test(this)) {
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`timed out waiting for ${what}; received ${JSON.stringify(this.text.slice(0, 500))}`)
      await new Promise<void>(resolve => {
        const t = setTimeout(resolve, Math.min(left, 50))
        this.#waiters.push(() => { clearTimeout(t); resolve() })
      })
    }
  }

  async untilText (needle: string, ms = 5000): Promise<void> {
    await this.until(c => c.text.includes(needle), ms, JSON.stringify(needle))
  }

  async untilBytes (n: number, ms = 5000): Promise<void> {
    await this.until(c => c.received.length >= n, ms, `${n} bytes`)
  }

  async untilClosed (ms = 5000): Promise<void> {
    await this.until(c => c.closed, ms, 'close')
  }

  /** Takes what was received so far, leaving an empty buffer. */
  drain (): Buffer {
    const out = this.received
    this.received = Buffer.alloc(0)
    return out
  }

  destroy (): void {
    this.socket.destroy()
  }

  #wake (): void {
    for (const w of this.#waiters.splice(0)) w()
  }
}

export async function openWire (port: number, tls: boolean, halfOpen = false, host = '127.0.0.1'): Promise<WireClient> {
  return await new Promise((resolve, reject) => {
    const socket = tls
      ? tlsConnect({ port, host, ca: tlsCert, servername: 'localhost', allowHalfOpen: halfOpen } as ConnectionOptions)
      : netConnect({ port, host, allowHalfOpen: halfOpen })
    const ready = tls ? 'secureConnect' : 'connect'
    socket.once(ready, () => {
      socket.removeListener('error', reject)
      resolve(new WireClient(socket))
    })
    socket.once('error', reject)
  })
}

/** The status code of the first response in `text`, or undefined when no status line arrived yet. */
export function statusOf (text: string): number | undefined {
  const m = /^HTTP\/1\.1 (\d{3}) /.exec(text)
  return m === null ? undefined : Number(m[1])
}

/**
 * One exchange through a splice, then both ends close: the client sends
 * `request`, the hidden server waits for its head and answers `answer`, the
 * client waits until it has read `expect`.
 */
export async function relayOnce (client: WireClient, hidden: WireClient, request: string, answer: string, expect: string): Promise<void> {
  client.write(request)
  await hidden.untilText('\r\n\r\n')
  hidden.write(answer)
  await client.untilText(expect)
  hidden.socket.end()
  client.socket.end()
}

/** A plain TCP connection to 127.0.0.1:`port` from `localAddress` (127.0.0.2 and up: one client address each); resolves once connected. */
export async function tcpFrom (port: number, localAddress: string): Promise<Socket> {
  return await new Promise((resolve, reject) => {
    const s = netConnect({ port, host: '127.0.0.1', localAddress }, () => resolve(s))
    s.once('error', reject)
  })
}

/** Resolves, once the peer has closed `socket`, with the number of bytes it sent before. */
export async function bytesUntilClose (socket: Socket): Promise<number> {
  return await new Promise(resolve => {
    let n = 0
    socket.on('data', (chunk: Buffer) => { n += chunk.length })
    socket.on('error', () => {})
    socket.once('close', () => resolve(n))
  })
}

/** One request naming `user` in a Basic credential, on a connection of its own; resolves with all that came back before the close. */
export async function basicExchange (port: number, user: string): Promise<string> {
  const wire = await openWire(port, false)
  wire.write(`GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Basic ${Buffer.from(`${user}:x`).toString('base64')}\r\n\r\n`)
  await wire.untilClosed()
  return wire.text
}

/** The answer to one CONNECT for `id` with `token` over plain TCP; the socket is closed after it. */
export async function connectOnce (port: number, id: string, token: string): Promise<{ status: number, text: string }> {
  const hidden = await openWire(port, false)
  try {
    hidden.write(`CONNECT uuid:${id}?response=${token} HTTP/1.1\r\nHost: h\r\n\r\n`)
    await hidden.until(c => c.text.includes('\r\n\r\n'), 15_000, 'an answer')
    return { status: statusOf(hidden.text) ?? 0, text: hidden.text }
  } finally {
    hidden.destroy()
  }
}
