import net from 'node:net'
import tls from 'node:tls'
import { digest, type Target } from './load'

const BLOCK = Buffer.alloc(1024 * 1024, 0x62)

function dial (target: Target): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = target.tls
      ? tls.connect({ port: target.port, host: '127.0.0.1', rejectUnauthorized: false })
      : net.connect({ port: target.port, host: '127.0.0.1' })
    socket.once(target.tls ? 'secureConnect' : 'connect', () => { socket.off('error', reject); resolve(socket) })
    socket.once('error', reject)
  })
}

/** Reads one answer: resolves once its head and Content-Length bytes of body have arrived, with the body's text if short. */
function readAnswer (socket: net.Socket, ms: number): Promise<{ status: number, bodyLength: number, body: string }> {
  return new Promise((resolve, reject) => {
    let head = Buffer.alloc(0)
    let need = -1
    let got = 0
    let status = 0
    let small = ''
    const timer = setTimeout(() => reject(new Error(`bulk transfer took over ${ms} ms`)), ms)
    socket.on('data', (chunk: Buffer) => {
      if (need < 0) {
        head = Buffer.concat([head, chunk])
        const end = head.indexOf('\r\n\r\n')
        if (end < 0) return
        const text = head.subarray(0, end).toString('latin1')
        status = Number(text.slice(9, 12))
        need = Number(/content-length: *(\d+)/i.exec(text)?.[1] ?? 0)
        chunk = head.subarray(end + 4)
      }
      got += chunk.length
      if (small.length < 200) small += chunk.toString('latin1')
      if (got >= need) {
        clearTimeout(timer)
        resolve({ status, bodyLength: got, body: small })
      }
    })
    socket.once('error', err => { clearTimeout(timer); reject(err) })
    socket.once('close', () => { clearTimeout(timer); reject(new Error('closed before the end of the answer')) })
  })
}

/** Scenario 3, down: one GET of `size` bytes through one connection. MB/s (10^6). */
export async function bulkDown (target: Target, size: number): Promise<number> {
  const socket = await dial(target)
  try {
    const started = performance.now()
    const answer = readAnswer(socket, 300_000)
    socket.write(`GET /blob?size=${size} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ${digest(target.id)}\r\n\r\n`)
    const { status, bodyLength } = await answer
    if (status !== 200 || bodyLength !== size) throw new Error(`bulk down: ${status}, ${bodyLength} of ${size} bytes`)
    return size / 1e6 / ((performance.now() - started) / 1000)
  } finally {
    socket.destroy()
  }
}

/** Scenario 3, up: one POST of `size` bytes through one connection. MB/s (10^6). */
export async function bulkUp (target: Target, size: number): Promise<number> {
  const socket = await dial(target)
  try {
    const started = performance.now()
    const answer = readAnswer(socket, 300_000)
    socket.write(`POST /sink HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ${digest(target.id)}\r\nContent-Length: ${size}\r\n\r\n`)
    let resume = (): void => {}
    const wake = (): void => resume()
    socket.on('drain', wake)
    socket.on('close', wake)
    for (let left = size; left > 0 && !socket.destroyed;) {
      const n = Math.min(left, BLOCK.length)
      left -= n
      if (!socket.write(n === BLOCK.length ? BLOCK : BLOCK.subarray(0, n))) await new Promise<void>(resolve => { resume = resolve })
    }
    const { status, body } = await answer
    const received = (JSON.parse(body) as { received: number }).received
    if (status !== 200 || received !== size) throw new Error(`bulk up: ${status}, ${received} of ${size} bytes`)
    return size / 1e6 / ((performance.now() - started) / 1000)
  } finally {
    socket.destroy()
  }
}
