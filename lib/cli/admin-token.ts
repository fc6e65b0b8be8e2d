import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs'
import type { FastifyBaseLogger } from 'fastify'
import { MIN_ADMIN_TOKEN, adminTokenProblem } from '../admin/options'
import { looseness } from '../registry/permissions'
import { CliError } from './cli-error'

export interface AdminToken {
  token: string
  /** The file is readable by other users: worth a warning, as ids.json is. */
  warning?: string
}

const CANNOT_READ: Record<string, string> = { ENOENT: 'no such file', EACCES: 'permission denied', EISDIR: 'is a directory' }

/**
 * Reads --admin-token-file: its first line, trimmed, is the token. The file
 * is judged as ids.json is: refused when other users can write it (they
 * could set a token of their own), a warning when they can read it. The
 * token never appears in a message: only the file's name and what is wrong.
 */
export function readAdminToken (file: string): AdminToken {
  const fail = (what: string): never => { throw new CliError(`--admin-token-file ${file}: ${what}`) }
  let text = ''
  let judged: { refuse?: string, warn?: string } = {}
  try {
    // Judged and read through one descriptor, so that the file judged is the file read.
    const fd = openSync(file, 'r')
    try {
      judged = looseness(fstatSync(fd), 'file')
      if (judged.refuse === undefined) text = readFileSync(fd, 'utf8')
    } finally {
      closeSync(fd)
    }
  } catch (err) {
    fail(CANNOT_READ[(err as NodeJS.ErrnoException).code ?? ''] ?? 'cannot be read')
  }
  if (judged.refuse !== undefined) fail(judged.refuse)
  const token = text.split(/\r?\n/, 1)[0].trim()
  const problem = adminTokenProblem(token)
  if (problem !== undefined) {
    throw new CliError(`--admin-token-file ${file} must hold a token of ${MIN_ADMIN_TOKEN} characters or more, visible ASCII without spaces, on its first line; the token there ${problem}`)
  }
  return judged.warn === undefined ? { token } : { token, warning: `--admin-token-file ${file}: ${judged.warn}` }
}

export type AdminTokenReload = (log: FastifyBaseLogger, why: string) => void

/**
 * The token serve hands the admin listener, as a function, and its reload:
 * on SIGHUP the file is read again with the checks of the start, and only a
 * token that passes them replaces the current one. Each reload is one line.
 */
export function reloadableAdminToken (file: string, first: string): { token: () => string, reload: AdminTokenReload } {
  let current = first
  return {
    token: () => current,
    reload: (log, why) => {
      try {
        const next = readAdminToken(file)
        if (next.warning !== undefined) log.warn(next.warning)
        const changed = next.token !== current
        current = next.token
        log.info({ why, file }, changed ? 'admin token reloaded' : 'admin token unchanged')
      } catch (err) {
        log.error({ why, file, reason: (err as Error).message }, 'admin token reload failed; the current token stays')
      }
    }
  }
}
