import { RendezvousOptionError } from '../errors'

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
  const bad = (what: string): never => { throw new RendezvousOptionError(`admin.${what}`) }
  if (typeof admin !== 'object' || admin === null) bad('must be an object with port and token')
  const { host = '127.0.0.1', port, token, rotateOverlap = 600_000 } = admin
  if (typeof host !== 'string' || host === '') bad('host must be a non-empty string')
  if (!Number.isInteger(port) || port < 0 || port > 65535) bad('port must be an integer from 0 to 65535')
  if (typeof token !== 'string' || token.trim().length < MIN_ADMIN_TOKEN) bad(`token must be a string of ${MIN_ADMIN_TOKEN} characters or more`)
  if (typeof rotateOverlap !== 'number' || !Number.isFinite(rotateOverlap) || rotateOverlap < 0) bad('rotateOverlap must be a non-negative number')
  return { host, port, token: token.trim(), rotateOverlap, publicUrl: admin.publicUrl, caFile: admin.caFile }
}
