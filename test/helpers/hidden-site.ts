import { createHash } from 'node:crypto'
import http from 'node:http'
import type { AddressInfo } from 'node:net'

/**
 * The service behind the agent in end-to-end tests: a plain node:http server
 * on 127.0.0.1 that makes bytes checkable from both ends.
 *
 * - `GET /blob?size=N&seed=S[&chunked=1]`: N bytes of `blobBytes(N, S)`, with
 *   Content-Length, or chunked when asked; `X-Body-Sha256` carries their hash.
 * - `POST /echo` (any method but GET and HEAD, in fact): the request body,
 *   unchanged, with `X-Body-Sha256` and `X-Body-Length` of what arrived.
 * - `GET /headers`: the request head as this server saw it, as JSON (`SeenRequest`).
 *
 * Every request's head is also kept in `site.seen`, so a test can check what
 * reached the hidden server for requests whose answers are bodies.
 */

export interface SeenRequest {
  method: string
  url: string
  httpVersion: string
  /** Name, value, name, value...: names in the case they arrived in, duplicates kept. */
  rawHeaders: string[]
  /** The body's length and sha256, once it has been read (not for GET /headers). */
  bodyLength?: number
  bodySha256?: string
}

export interface HiddenSite {
  port: number
  /** `http://127.0.0.1:PORT`, what the agent's `--to` takes. */
  url: string
  seen: SeenRequest[]
  close: () => Promise<void>
}

interface Teardown { teardown: (fn: () => unknown) => void }

const MAX_BLOB = 256 * 1024 * 1024
const CHUNK = 64 * 1024

export function sha256 (data: Buffer | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex')
}

/**
 * N deterministic pseudo-random bytes for a seed: xorshift128 seeded from
 * sha256(seed). Tests compute the expected bytes, or their hash, locally.
 */
export function blobBytes (size: number, seed: string): Buffer {
  if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`bad size ${size}`)
  const init = createHash('sha256').update(`hidden-site:${seed}`).digest()
  let x = init.readUInt32LE(0) | 1
  let y = init.readUInt32LE(4)
  let z = init.readUInt32LE(8)
  let w = init.readUInt32LE(12)
  const words = Math.ceil(size / 4)
  const out = Buffer.allocUnsafe(words * 4)
  for (let i = 0; i < words; i++) {
    const s = x ^ (x << 11)
    x = y
    y = z
    z = w
    w = (w ^ (w >>> 19) ^ (s ^ (s >>> 8))) >>> 0
    out.writeUInt32LE(w, i * 4)
  }
  return out.subarray(0, size)
}

/** Starts the site on 127.0.0.1 with an ephemeral port; closed at teardown. */
export async function startHiddenSite (t: Teardown): Promise<HiddenSite> {
  const seen: SeenRequest[] = []
  const server = http.createServer((req, res) => {
    const record: SeenRequest = { method: req.method ?? '', url: req.url ?? '', httpVersion: req.httpVersion, rawHeaders: [...req.rawHeaders] }
    seen.push(record)
    handle(req, res, record).catch((err: Error) => {
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'text/plain' })
        res.end(`${err.message}\n`)
      } else {
        res.destroy(err)
      }
    })
  })
  // The relay may cut connections at any point; that must not crash the test process.
  server.on('clientError', (_err, socket) => socket.destroy())
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => { server.off('error', reject); resolve() })
  })
  const port = (server.address() as AddressInfo).port
  let closed: Promise<void> | undefined
  const close = async (): Promise<void> => {
    closed ??= new Promise<void>(resolve => {
      server.close(() => resolve())
      server.closeAllConnections()
    })
    await closed
  }
  t.teardown(close)
  return { port, url: `http://127.0.0.1:${port}`, seen, close }
}

async function handle (req: http.IncomingMessage, res: http.ServerResponse, record: SeenRequest): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://hidden.invalid')
  if (url.pathname === '/blob' && (req.method === 'GET' || req.method === 'HEAD')) {
    req.resume()
    const size = Number(url.searchParams.get('size') ?? '0')
    const seed = url.searchParams.get('seed') ?? ''
    if (!Number.isSafeInteger(size) || size < 0 || size > MAX_BLOB) {
      res.writeHead(400, { 'content-type': 'text/plain' })
      res.end('bad size\n')
      return
    }
    const body = blobBytes(size, seed)
    const chunked = url.searchParams.get('chunked') === '1'
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'x-body-sha256': sha256(body),
      ...(chunked ? {} : { 'content-length': String(size) })
    })
    if (req.method === 'HEAD') {
      res.end()
      return
    }
    await writeChunks(res, body)
    return
  }
  if (url.pathname === '/headers' && req.method === 'GET') {
    req.resume()
    const json = JSON.stringify(record)
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(json)) })
    res.end(json)
    return
  }
  if (url.pathname === '/echo' && req.method !== 'GET' && req.method !== 'HEAD') {
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    const body = Buffer.concat(chunks)
    record.bodyLength = body.length
    record.bodySha256 = sha256(body)
    res.writeHead(200, {
      'content-type': req.headers['content-type'] ?? 'application/octet-stream',
      'content-length': String(body.length),
      'x-body-sha256': record.bodySha256,
      'x-body-length': String(body.length)
    })
    await writeChunks(res, body)
    return
  }
  req.resume()
  res.writeHead(404, { 'content-type': 'text/plain' })
  res.end('hidden site: no such page\n')
}

// In pieces, with backpressure, so large bodies really stream through the relay.
async function writeChunks (res: http.ServerResponse, body: Buffer): Promise<void> {
  for (let offset = 0; offset < body.length; offset += CHUNK) {
    if (res.destroyed) return
    const ok = res.write(body.subarray(offset, offset + CHUNK))
    if (!ok) {
      await new Promise<void>(resolve => {
        const done = (): void => { res.off('drain', done); res.off('close', done); resolve() }
        res.on('drain', done)
        res.on('close', done)
      })
    }
  }
  res.end()
}
