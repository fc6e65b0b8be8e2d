import { RendezvousOptionError } from '../errors'
import { shown } from '../option-value'

export interface AdminOptions {
  /** Address of the admin listener. Default 127.0.0.1. */
  host?: string
  /** Port of the admin listener; 0 picks a free one. */
  port: number
  /** Bearer token every /api/ request must carry; 16 characters or more. */
  token: string
  /** How long a rotated-out secret stays accepted, in ms. Default 600000 (10 minutes). */
  rotateOverlap?: number
  /** The relay's public URL, for the `rendezvous agent` command the page shows. */
  publicUrl?: string | (() => string)
  /** A CA file the agent command should pass with --ca (a self-signed certificate). */
  caFile?: string
}

export type ResolvedAdminOptions = Required<Omit<AdminOptions, 'caFile' | 'publicUrl'>> & Pick<AdminOptions, 'caFile' | 'publicUrl'>

export const MIN_ADMIN_TOKEN = 16

export function resolveAdminOptions (admin: AdminOptions | false | undefined): ResolvedAdminOptions | undefined {
  if (admin === undefined || admin === false) return undefined
  const bad = (what: string, value: unknown): never => { throw new RendezvousOptionError(`${what}, got ${shown(value)}`) }
  if (typeof admin !== 'object' || admin === null || Array.isArray(admin)) bad('admin must be an object with port and token, or false', admin)
  const { host = '127.0.0.1', port, token, rotateOverlap = 600_000, publicUrl, caFile } = admin
  if (typeof host !== 'string' || host === '') bad('admin.host must be a non-empty string', host)
  if (!Number.isInteger(port) || port < 0 || port > 65535) bad('admin.port must be an integer from 0 to 65535', port)
  // The token itself stays out of the message: it may be a real one, mistyped.
  if (typeof token !== 'string' || token.trim().length < MIN_ADMIN_TOKEN) {
    throw new RendezvousOptionError(`admin.token must be a string of ${MIN_ADMIN_TOKEN} characters or more`)
  }
  if (typeof rotateOverlap !== 'number' || !Number.isFinite(rotateOverlap) || rotateOverlap < 0) bad('admin.rotateOverlap must be a non-negative number', rotateOverlap)
  if (publicUrl !== undefined && typeof publicUrl !== 'string' && typeof publicUrl !== 'function') bad('admin.publicUrl must be a URL string or a function that returns one', publicUrl)
  if (caFile !== undefined && (typeof caFile !== 'string' || caFile === '')) bad('admin.caFile must be a non-empty string, the path of a CA file', caFile)
  return { host, port, token: token.trim(), rotateOverlap, publicUrl, caFile }
}
