import http from 'node:http'
import https from 'node:https'
import { readFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { announce, site } from './site'

// The backend every path ends at: plain HTTP and HTTPS listeners in one process.
const [certFile, keyFile] = process.argv.slice(2)

function tune (server: http.Server): http.Server {
  server.keepAliveTimeout = 60_000
  server.headersTimeout = 0
  server.requestTimeout = 0
  server.on('clientError', (_err, socket) => socket.destroy())
  return server
}

const plain = tune(http.createServer(site))
const secure = tune(https.createServer({ cert: readFileSync(certFile), key: readFileSync(keyFile) }, site))
plain.listen(0, '127.0.0.1', () => {
  secure.listen(0, '127.0.0.1', () => {
    announce({ port: (plain.address() as AddressInfo).port, tlsPort: (secure.address() as AddressInfo).port })
  })
})
