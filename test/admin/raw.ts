import net from 'node:net'
import { Writable } from 'node:stream'
import type { Registry } from 'prom-client'

/** Writes `head` on a fresh connection and resolves every byte the listener sent once it closes (5 s at most). */
export async function raw (port: number, head: string | Buffer, host = '127.0.0.1'): Promise<string> {
  const socket = net.connect(port, host)
  const chunks: Buffer[] = []
  socket.on('data', chunk => chunks.push(chunk))
  socket.on('error', () => {})
  socket.write(head)
  await new Promise(resolve => {
    socket.once('close', resolve)
    setTimeout(resolve, 5000).unref()
  })
  socket.destroy()
  return Buffer.concat(chunks).toString('latin1')
}

/** The status, header fields (lower-case names) and body of one whole answer. */
export function parse (answer: string): { status: number, headers: Record<string, string>, body: string } {
  const end = answer.indexOf('\r\n\r\n')
  const [line, ...fields] = answer.slice(0, end === -1 ? answer.length : end).split('\r\n')
  const headers: Record<string, string> = {}
  for (const field of fields) {
    const colon = field.indexOf(':')
    headers[field.slice(0, colon).toLowerCase()] = field.slice(colon + 1).trim()
  }
  return { status: Number(/^HTTP\/1\.1 (\d{3}) /.exec(line)?.[1] ?? 0), headers, body: end === -1 ? '' : answer.slice(end + 4) }
}

/** rendezvous_admin_requests_total as `action status` → count. */
export async function adminCounts (registry: Registry): Promise<Record<string, number>> {
  const metric = await registry.getSingleMetric('rendezvous_admin_requests_total')?.get()
  const out: Record<string, number> = {}
  for (const v of metric?.values ?? []) out[`${String(v.labels.action)} ${String(v.labels.status)}`] = v.value
  return out
}

/** A log stream for Fastify, and its JSON lines. */
export function capture (): { stream: Writable, text: () => string, lines: () => Array<Record<string, any>> } {
  let text = ''
  const stream = new Writable({ write (chunk, _e, cb) { text += String(chunk); cb() } })
  return { stream, text: () => text, lines: () => text.trim().split('\n').filter(l => l !== '').map(l => JSON.parse(l)) }
}

export const SECURITY_HEADERS = ['cache-control', 'x-content-type-options', 'content-security-policy']
