import { readFileSync } from 'node:fs'
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import tls from 'node:tls'
import { announce } from './site'

/*
 * The baseline for the splice: the plainest Node relay there is, pipe() both
 * ways. Given a certificate and key it is the TLS one instead (TLS in, TLS
 * out to the HTTPS backend, the way nginx-tls and relay-tls work), which is
 * what Node's TLS stack costs before any relay code runs.
 */
const [port, certFile, keyFile] = process.argv.slice(2)
const target = Number(port)
const secure = certFile !== undefined && keyFile !== undefined
// As nginx's proxy_ssl_session_reuse: one full handshake, then resumption.
let session: Buffer | undefined

function upstream (): net.Socket {
  if (!secure) return net.connect(target, '127.0.0.1')
  const s = tls.connect({ port: target, host: '127.0.0.1', rejectUnauthorized: false, session })
  s.once('session', (got: Buffer) => { session = got })
  return s
}

function relay (client: net.Socket): void {
  const up = upstream()
  const kill = (): void => { client.destroy(); up.destroy() }
  client.on('error', kill)
  up.on('error', kill)
  client.on('close', kill)
  up.on('close', kill)
  client.pipe(up)
  up.pipe(client)
}

const server = secure
  ? tls.createServer({ cert: readFileSync(certFile), key: readFileSync(keyFile) }, relay)
  : net.createServer(relay)
server.listen(0, '127.0.0.1', () => announce({ port: (server.address() as AddressInfo).port }))
