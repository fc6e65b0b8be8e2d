import { trimOws } from './ows'

// Node's parser never lets these through; if a caller built a head by hand
// they would let one request smuggle another to the hidden server.
const BREAK = /[\r\n\0]/

export interface SerializeOptions {
  /**
   * Drops Authorization lines: true (default) when the rendezvous credential
   * came in one, as it carried the ID, not anything the hidden server asked
   * for. A WebSocket routed by `?rendezvous=ID` keeps its own (a Bearer
   * token, say), so it is forwarded unchanged.
   */
  dropAuthorization?: boolean
}

/**
 * Re-serialises a mobile client's request head for the hidden server
 * (docs/protocol.md, "What reaches the hidden server"). Throws TypeError on a
 * CR, LF or NUL, which Node's lenient parser (`insecureHTTPParser`) lets through.
 */
export function serializeHead (req: { method: string, url: string, httpVersion: string, rawHeaders: string[] }, opts: SerializeOptions = {}): Buffer {
  const drop = opts.dropAuthorization ?? true
  const { method, url, httpVersion, rawHeaders } = req
  if (BREAK.test(method) || BREAK.test(url) || BREAK.test(httpVersion)) {
    throw new TypeError('request line contains a line break')
  }
  let head = `${method} ${url} HTTP/${httpVersion}\r\n`
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]
    if (drop && name.toLowerCase() === 'authorization') continue
    const value = trimOws(rawHeaders[i + 1])
    if (BREAK.test(name) || BREAK.test(value)) throw new TypeError(`header ${JSON.stringify(name)} contains a line break`)
    head += `${name}: ${value}\r\n`
  }
  head += '\r\n'
  // Node decodes header bytes as latin1, so latin1 gives the original bytes back.
  return Buffer.from(head, 'latin1')
}
