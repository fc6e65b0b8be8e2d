import type { IncomingMessage, ServerResponse } from 'node:http'

/**
 * What every path serves, the same code behind each: a 120-byte answer for
 * the request-rate scenarios, a stream of N bytes down, and a sink that
 * counts an upload.
 */
const SMALL = Buffer.from('x'.repeat(119) + '\n')
const BLOCK = Buffer.alloc(1024 * 1024, 0x61)

export function site (req: IncomingMessage, res: ServerResponse): void {
  const url = req.url ?? '/'
  if (url.startsWith('/blob')) {
    req.resume()
    const size = Number(new URL(url, 'http://x').searchParams.get('size') ?? '0')
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(size) })
    stream(res, size)
    return
  }
  if (url.startsWith('/sink')) {
    let received = 0
    req.on('data', (chunk: Buffer) => { received += chunk.length })
    req.on('end', () => {
      const body = JSON.stringify({ received })
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length) })
      res.end(body)
    })
    return
  }
  req.resume()
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(SMALL.length) })
  res.end(SMALL)
}

function stream (res: ServerResponse, left: number): void {
  while (left > 0) {
    const n = Math.min(left, BLOCK.length)
    left -= n
    if (!res.write(n === BLOCK.length ? BLOCK : BLOCK.subarray(0, n))) {
      res.once('drain', () => stream(res, left))
      return
    }
  }
  res.end()
}

/** Child processes say where they listen with one JSON line on stdout. */
export function announce (info: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(info) + '\n')
}
