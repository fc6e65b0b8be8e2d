import http from 'node:http'
import net from 'node:net'
import tls from 'node:tls'
import { createV1Token } from '../../lib/tokens/v1'
import { announce, site } from './site'

/**
 * A hidden server that speaks the protocol itself, no agent: it keeps
 * `pool` connections parked per ID and serves each one that a client takes
 * with a plain node:http server, then parks a replacement.
 */
interface Config { relay: string, ids: string[], secret: string, pool: number, dialing: number }

const config = JSON.parse(process.argv[2]) as Config
const relay = new URL(config.relay)
const secure = relay.protocol === 'https:'
const port = Number(relay.port)
const server = http.createServer(site)
server.headersTimeout = 0
server.requestTimeout = 0
server.keepAliveTimeout = 60_000
server.on('clientError', (_err, socket) => socket.destroy())

// Parked connections not yet taken by a client, and their IDs. Node's parser
// reads plain sockets natively, so the first request says one was taken.
const fresh = new Map<net.Socket, string>()
server.on('request', (req: http.IncomingMessage) => {
  const id = fresh.get(req.socket)
  if (id !== undefined && fresh.delete(req.socket)) want(id)
})

// The latest TLS session the relay gave us: each CONNECT resumes it, as a real
// hidden side would and as nginx's proxy_ssl_session_reuse (on by default)
// does on the nginx-tls path, so only the first CONNECT does a full handshake.
let session: Buffer | undefined

const queue: string[] = []
let dialing = 0
let failures = 0

function want (id: string): void {
  queue.push(id)
  pumpQueue()
}

function pumpQueue (): void {
  while (dialing < config.dialing && queue.length > 0) {
    const id = queue.shift() as string
    dialing++
    park(id).then(ok => {
      dialing--
      if (!ok) {
        failures++
        setTimeout(() => want(id), 200)
      }
      pumpQueue()
    }, () => {})
  }
}

async function park (id: string): Promise<boolean> {
  return await new Promise(resolve => {
    const socket = secure
      ? tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false, session }).once('session', (s: Buffer) => { session = s })
      : net.connect({ port, host: '127.0.0.1' })
    let head = Buffer.alloc(0)
    const fail = (): void => { socket.destroy(); resolve(false) }
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk])
      const end = head.indexOf('\r\n\r\n')
      if (end === -1) return
      socket.off('data', onData)
      socket.off('error', fail)
      socket.off('close', fail)
      if (!head.subarray(0, 12).equals(Buffer.from('HTTP/1.1 200'))) return fail()
      socket.pause()
      const rest = head.subarray(end + 4)
      if (rest.length > 0) socket.unshift(rest)
      socket.setNoDelay(true)
      fresh.set(socket, id)
      // A parked connection that leaves unused is replaced too.
      socket.once('close', () => { if (fresh.delete(socket)) want(id) })
      server.emit('connection', socket)
      socket.resume()
      resolve(true)
    }
    socket.once(secure ? 'secureConnect' : 'connect', () => {
      socket.write(`CONNECT uuid:${id}?response=${createV1Token(id, config.secret)} HTTP/1.1\r\nHost: ${relay.host}\r\n\r\n`)
    })
    socket.on('data', onData)
    socket.on('error', fail)
    socket.on('close', fail)
  })
}

for (let i = 0; i < config.pool; i++) for (const id of config.ids) want(id)
announce({ started: true })
setInterval(() => { if (failures > 0) { announce({ failures }); failures = 0 } }, 5000).unref()
// Exit on SIGTERM rather than die of it, so that a profiled run (--cpu-prof) writes its profile.
process.once('SIGTERM', () => process.exit(0))
