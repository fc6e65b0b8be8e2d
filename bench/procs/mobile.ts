import net from 'node:net'
import { announce } from './site'
import { percentiles } from '../lib/load'

/**
 * Scenario 5's mobile clients: opens `total` keep-alive connections to the
 * relay, each a rendezvous (one request answered), holds them all, then
 * sends requests on `active` of them for `seconds`. Reports when all are
 * held, then waits for SIGUSR2 to start the traffic, and reports at the end.
 */
const [portText, idsText, totalText, activeText, secondsText] = process.argv.slice(2)
const port = Number(portText)
const ids = idsText.split(',')
const total = Number(totalText)
const active = Number(activeText)
const seconds = Number(secondsText)

interface Conn { socket: net.Socket, request: Buffer, waiting?: (err?: Error) => void, got: string }
const conns: Conn[] = []
let errors = 0

function request (conn: Conn): Promise<number> {
  const started = performance.now()
  return new Promise((resolve, reject) => {
    conn.got = ''
    conn.waiting = err => { conn.waiting = undefined; if (err !== undefined) reject(err); else resolve(performance.now() - started) }
    conn.socket.write(conn.request)
  })
}

function open (i: number): Promise<Conn> {
  const id = ids[i % ids.length]
  const head = Buffer.from(`GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Digest username="${id}", realm="rendezvous", nonce="b", uri="/", response="0"\r\n\r\n`)
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1' })
    const conn: Conn = { socket, request: head, got: '' }
    socket.setNoDelay(true)
    socket.on('data', (chunk: Buffer) => {
      conn.got += chunk.toString('latin1')
      // The site's small answer: 120 bytes of body after the head.
      const end = conn.got.indexOf('\r\n\r\n')
      if (end >= 0 && conn.got.length >= end + 4 + 120) {
        if (!conn.got.startsWith('HTTP/1.1 200')) conn.waiting?.(new Error(conn.got.split('\r\n')[0]))
        else conn.waiting?.()
      }
    })
    socket.on('error', () => {})
    socket.on('close', () => { conn.waiting?.(new Error('closed')) })
    socket.once('connect', () => { request(conn).then(() => resolve(conn), reject) })
  })
}

async function main (): Promise<void> {
  let next = 0
  const opener = async (): Promise<void> => {
    while (next < total) {
      const i = next++
      try { conns.push(await open(i)) } catch { errors++ }
    }
  }
  await Promise.all(Array.from({ length: 100 }, opener))
  announce({ held: conns.length, errors })
  await new Promise(resolve => process.once('SIGUSR2', resolve))
  const latencies: number[] = []
  const deadline = performance.now() + seconds * 1000
  const loop = async (conn: Conn): Promise<void> => {
    while (performance.now() < deadline) {
      try { latencies.push(await request(conn)) } catch { errors++; return }
    }
  }
  await Promise.all(conns.slice(0, active).map(loop))
  const alive = conns.filter(c => !c.socket.destroyed).length
  announce({ requests: latencies.length, rps: latencies.length / seconds, ...percentiles(latencies), errors, alive })
  setInterval(() => {}, 1000)
}

main().catch(err => { announce({ failed: String(err) }); process.exit(1) })
