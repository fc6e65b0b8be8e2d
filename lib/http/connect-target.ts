import { isValidId } from '../registry/ids'

export type ConnectTarget =
  | { kind: 'ok', id: string, token: string }
  | { kind: 'malformed', reason: string }
  | { kind: 'not_uuid', reason: string }
  | { kind: 'missing_token', id: string }

const MAX_TARGET = 2048
const MAX_TOKEN = 512
const PREFIX = 'uuid:'
// Tokens are never percent-decoded: both v1 and TOTP fit the unreserved set,
// so one spelling per token keeps the replay cache honest.
const TOKEN = /^[A-Za-z0-9._~-]+$/

/**
 * Reads the request-target of a hidden server's `CONNECT uuid:ID?response=TKN`
 * (docs/protocol.md, the hidden side). Anything else is refused rather than tunnelled: the
 * relay must never become an open proxy.
 */
export function parseConnectTarget (target: string): ConnectTarget {
  if (target.length > MAX_TARGET) return { kind: 'malformed', reason: 'target too long' }
  if (target.slice(0, PREFIX.length).toLowerCase() !== PREFIX) {
    return { kind: 'not_uuid', reason: 'only uuid: targets are accepted' }
  }
  const rest = target.slice(PREFIX.length)
  const q = rest.indexOf('?')
  const rawId = q < 0 ? rest : rest.slice(0, q)
  if (!isValidId(rawId)) return { kind: 'malformed', reason: 'invalid ID' }
  const id = rawId.toLowerCase()
  const query = q < 0 ? '' : rest.slice(q + 1)
  if (query === '') return { kind: 'missing_token', id }

  let token: string | undefined
  for (const part of query.split('&')) {
    const eq = part.indexOf('=')
    const name = eq < 0 ? part : part.slice(0, eq)
    if (name !== 'response') return { kind: 'malformed', reason: 'unexpected query parameter' }
    // Two tokens would leave it open which one was checked and which one logged.
    if (token !== undefined) return { kind: 'malformed', reason: 'repeated response parameter' }
    token = eq < 0 ? '' : part.slice(eq + 1)
  }
  if (token === undefined || token === '') return { kind: 'missing_token', id }
  if (token.length > MAX_TOKEN) return { kind: 'malformed', reason: 'token too long' }
  if (!TOKEN.test(token)) return { kind: 'malformed', reason: 'invalid token characters' }
  return { kind: 'ok', id, token }
}
