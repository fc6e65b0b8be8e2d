import type tap from 'tap'
import { once } from 'node:events'
import http from 'node:http'
import type net from 'node:net'

/** Reads until the peer ends or closes the socket. */
export function readAll (socket: net.Socket): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.once('close', () => resolve(Buffer.concat(chunks)))
    socket.resume()
  })
}

/** Reads until `text` has been seen, leaving the socket open. */
export function readUntil (socket: net.Socket, text: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = ''
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${JSON.stringify(text)}; got ${JSON.stringify(seen)}`)), timeoutMs)
    const onData = (c: Buffer): void => {
      seen += c.toString('latin1')
      if (seen.includes(text)) {
        clearTimeout(timer)
        socket.off('data', onData)
        resolve(seen)
      }
    }
    socket.on('data', onData)
    socket.resume()
  })
}

export interface Echo {
  server: http.Server
  url: string
  requests: Array<{ method: string, url: string, body: string, headers: http.IncomingHttpHeaders }>
}

/** A local HTTP service that answers each request with a summary of it. */
export async function echoServer (): Promise<Echo> {
  const requests: Echo['requests'] = []
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString()
      requests.push({ method: req.method!, url: req.url!, body, headers: req.headers })
      const text = `${req.method} ${req.url} ${body}`
      res.setHeader('content-length', Buffer.byteLength(text))
      res.end(text)
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as net.AddressInfo
  return { server, url: `http://127.0.0.1:${port}`, requests }
}

export function sleep (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** A tap subtest, as the callback of t.test() receives it. */
export type TapTest = Parameters<Parameters<typeof tap.test>[0]>[0]
