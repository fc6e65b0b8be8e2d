import net from 'node:net'
import tls from 'node:tls'
import { readFileSync } from 'node:fs'
import { announce } from './site'

/**
 * The memory baseline: bare Node sockets of the same kind as parked ones.
 * `server plain|tls [cert key]` accepts and holds connections;
 * `client plain|tls PORT N` opens N of them and holds them.
 */
const [mode, kind, ...rest] = process.argv.slice(2)
const held: net.Socket[] = []

if (mode === 'server') {
  const hold = (socket: net.Socket): void => { held.push(socket); socket.on('error', () => {}) }
  const server = kind === 'tls'
    ? tls.createServer({ cert: readFileSync(rest[0]), key: readFileSync(rest[1]) }, hold)
    : net.createServer(hold)
  server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => announce({ port: (server.address() as net.AddressInfo).port }))
} else {
  const port = Number(rest[0])
  const total = Number(rest[1])
  let opened = 0
  let failed = 0
  // Resumed like the hidden server's parked connections (hidden.ts), so both sides of the comparison hold the same kind of TLS session.
  let session: Buffer | undefined
  const open = async (): Promise<void> => {
    while (opened + failed < total) {
      opened++
      await new Promise<void>(resolve => {
        const socket = kind === 'tls'
          ? tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false, session }, () => resolve()).once('session', (s: Buffer) => { session = s })
          : net.connect({ port, host: '127.0.0.1' }, () => resolve())
        socket.on('error', () => { opened--; failed++; resolve() })
        held.push(socket)
      })
    }
  }
  Promise.all(Array.from({ length: 100 }, open)).then(() => announce({ opened, failed }), () => {})
}
