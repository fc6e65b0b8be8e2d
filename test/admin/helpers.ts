import { Writable } from 'node:stream'
import { runIds } from '../../lib/cli/ids'
import type { TestRendezvous as Relay } from '../helpers/rendezvous'

export const TOKEN = 'admin-token-0123456789abcdef'

export function adminUrl (relay: Relay, path = ''): string {
  const address = relay.app.rendezvous.adminAddress()
  if (address === undefined) throw new Error('the admin listener is off')
  return `http://127.0.0.1:${address.port}${path}`
}

export async function api (relay: Relay, method: string, path: string, body?: unknown, token = TOKEN): Promise<{ status: number, body: any, headers: Headers }> {
  const res = await fetch(adminUrl(relay, path), {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body)
  })
  return { status: res.status, body: await res.json().catch(() => undefined), headers: res.headers }
}

/** `rendezvous ids ...` in this process, as a user would type it. */
export async function idsCli (...args: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  let stdout = ''
  let stderr = ''
  const code = await runIds(args, {
    stdout: new Writable({ write (chunk, _e, cb) { stdout += String(chunk); cb() } }),
    stderr: new Writable({ write (chunk, _e, cb) { stderr += String(chunk); cb() } }),
    env: {}
  })
  return { code, stdout, stderr }
}

/** Whether a CONNECT with this secret parks (true) or is refused with 401 (false); the connection is closed again. */
export async function parks (relay: Relay, id: string, secret: string): Promise<boolean> {
  try {
    (await relay.park(id, secret)).socket.destroy()
    return true
  } catch (err) {
    if (/park refused: HTTP\/1\.1 401/.test(String(err))) return false
    throw err
  }
}
