import { resolve } from 'node:path'
import { AdminTokenError, RendezvousOptionError } from '../errors'
import { shown } from '../option-value'

export interface AdminOptions {
  /** Address of the admin listener. Default 127.0.0.1. */
  host?: string
  /** Port of the admin listener; 0 picks a free one. */
  port: number
  /**
   * Bearer token every /api/ request must carry: 16 or more visible ASCII
   * characters. A function is asked on each request (rendezvous serve
   * rereads its token file on SIGHUP that way); it must return such a token.
   */
  token: string | (() => string)
  /** How long a rotated-out secret stays accepted, in ms. Default 600000 (10 minutes). */
  rotateOverlap?: number
  /** The relay's public URL, for the `rendezvous agent` command the page shows. */
  publicUrl?: string | (() => string)
  /** A CA file the agent command should pass with --ca (a self-signed certificate); a relative path is taken from the working directory now. */
  caFile?: string
  /** How the agent command runs the CLI. Default `rendezvous`; serve gives the command that started it. */
  cli?: string
}

export type ResolvedAdminOptions = Required<Omit<AdminOptions, 'caFile' | 'publicUrl'>> & Pick<AdminOptions, 'caFile' | 'publicUrl'>

export const MIN_ADMIN_TOKEN = 16

/** The longest overlap of a rotation, in seconds (a week): the API's overlapSeconds, --admin-rotate-overlap and admin.rotateOverlap alike. */
export const MAX_ROTATE_OVERLAP_S = 7 * 86_400

/** The agent command's --server when no public URL is known: for the user to fill in. */
export const PLACEHOLDER_URL = 'https://HOST:8443/'

const PUBLIC_URL = 'an http:// or https:// URL of the relay without a path or query, as rendezvous agent --server takes it'

/** What is wrong with a public URL, if anything, by the agent's own rules for its --server: a reason to complete "it ...". */
export function publicUrlProblem (value: unknown): string | undefined {
  if (typeof value !== 'string') return `is not a string but ${shown(value)}`
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return `is not an absolute URL: ${JSON.stringify(value)}`
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return `is ${url.protocol}//, not https:// or http://: ${value}`
  if (url.port === '0') return `has port 0, which no server listens on: ${value}`
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '') return `has a path or a query, which the agent refuses: ${value}`
  return undefined
}

/**
 * The relay's URL for the agent command now. A function is asked at each
 * call; an answer the agent would refuse (or a throw) gives the placeholder
 * instead, and `warn` is told why: the ID is added or rotated by then, and
 * its new secret must still reach the user.
 */
export function currentPublicUrl (publicUrl: AdminOptions['publicUrl'], warn: (problem: string) => void): string {
  if (typeof publicUrl !== 'function') return publicUrl ?? PLACEHOLDER_URL
  let problem: string | undefined
  try {
    const value: unknown = publicUrl()
    problem = publicUrlProblem(value)
    if (problem === undefined) return value as string
  } catch (err) {
    problem = `threw ${(err as Error)?.message ?? String(err)}`
  }
  warn(`admin.publicUrl (a function) ${problem}; the agent command names ${PLACEHOLDER_URL} instead: the URL must be ${PUBLIC_URL}`)
  return PLACEHOLDER_URL
}

// RFC 6750's b64token and what clients send: Node reads header bytes as latin-1,
// so a space splits the token and a character beyond latin-1 (€) never matches.
const VISIBLE_ASCII = /^[\x21-\x7e]+$/

/** What is wrong with an admin token, if anything: a reason to complete "the token ...". */
export function adminTokenProblem (token: string): string | undefined {
  if (token.length < MIN_ADMIN_TOKEN) return `is shorter than ${MIN_ADMIN_TOKEN} characters`
  if (!VISIBLE_ASCII.test(token)) return 'has a character other than visible ASCII (0x21 to 0x7E): no request could send it as it is (a space, an accented letter, €)'
  return undefined
}

/** The token a function option returns now; throws when it is not one, so that a request is refused, never let on. */
export function currentAdminToken (token: string | (() => string)): string {
  const value = typeof token === 'function' ? token() : token
  const problem = typeof value === 'string' ? adminTokenProblem(value) : 'is not a string'
  if (problem !== undefined) throw new AdminTokenError(problem)
  return value
}

export function resolveAdminOptions (admin: AdminOptions | false | undefined): ResolvedAdminOptions | undefined {
  if (admin === undefined || admin === false) return undefined
  const bad = (what: string, value: unknown): never => { throw new RendezvousOptionError(`${what}, got ${shown(value)}`) }
  if (typeof admin !== 'object' || admin === null || Array.isArray(admin)) bad('admin must be an object with port and token, or false', admin)
  const { host = '127.0.0.1', port, token, rotateOverlap = 600_000, publicUrl, caFile, cli = 'rendezvous' } = admin
  if (typeof host !== 'string' || host === '') bad('admin.host must be a non-empty string', host)
  if (!Number.isInteger(port) || port < 0 || port > 65535) bad('admin.port must be an integer from 0 to 65535', port)
  // The token itself stays out of the messages: it may be a real one, mistyped.
  if (typeof token !== 'string' && typeof token !== 'function') {
    throw new RendezvousOptionError(`admin.token must be a string of ${MIN_ADMIN_TOKEN} or more visible ASCII characters, or a function that returns one`)
  }
  const problem = tokenProblemAtStart(token)
  if (problem !== undefined) throw new RendezvousOptionError(`admin.token ${problem}`)
  // The API refuses a longer one, so every rotation that takes the default would get 400.
  if (typeof rotateOverlap !== 'number' || !Number.isFinite(rotateOverlap) || rotateOverlap < 0 || rotateOverlap > MAX_ROTATE_OVERLAP_S * 1000) {
    bad(`admin.rotateOverlap must be a number of ms from 0 to ${MAX_ROTATE_OVERLAP_S * 1000} (a week, the longest overlap a rotation takes)`, rotateOverlap)
  }
  if (publicUrl !== undefined && typeof publicUrl !== 'string' && typeof publicUrl !== 'function') bad('admin.publicUrl must be a URL string or a function that returns one', publicUrl)
  // A function may know the URL only once the app listens (serve's bound port): its answer is checked where it is used.
  if (typeof publicUrl === 'string' && publicUrlProblem(publicUrl) !== undefined) bad(`admin.publicUrl must be ${PUBLIC_URL}`, publicUrl)
  if (caFile !== undefined && (typeof caFile !== 'string' || caFile === '')) bad('admin.caFile must be a non-empty string, the path of a CA file', caFile)
  if (typeof cli !== 'string' || cli.trim() === '') bad('admin.cli must be a non-empty string, how to run the rendezvous CLI', cli)
  // The agent command is pasted in another directory, or on another machine: a relative path would name another file there.
  return { host, port, token: typeof token === 'string' ? token.trim() : token, rotateOverlap, publicUrl, caFile: caFile === undefined ? undefined : resolve(caFile), cli }
}

function tokenProblemAtStart (token: string | (() => string)): string | undefined {
  if (typeof token === 'string') return adminTokenProblem(token.trim())
  const value: unknown = token()
  const problem = typeof value === 'string' ? adminTokenProblem(value) : 'is not a string'
  return problem === undefined ? undefined : `(a function) returned a token that ${problem}`
}
