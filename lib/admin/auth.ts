import { createHash, timingSafeEqual } from 'node:crypto'
import type { onRequestHookHandler } from 'fastify'
import { refuse } from './refusal'

// Compared as digests so that neither the length nor the bytes of the token leak through timing.
const digest = (value: string): Buffer => createHash('sha256').update(value).digest()

/** Refuses every request under /api/ without `Authorization: Bearer <token>`, before any handler runs. */
export function bearerGuard (token: string): onRequestHookHandler {
  const expected = digest(token)
  return function adminBearer (request, reply, done) {
    if (!request.url.startsWith('/api/')) {
      done()
      return
    }
    const header = request.headers.authorization ?? ''
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header)
    if (match !== null && timingSafeEqual(digest(match[1]), expected)) {
      done()
      return
    }
    // The log says which of the two it was (a stale token in a script, or none), never the header.
    const why = match === null ? 'no bearer token' : 'a wrong bearer token'
    refuse(reply.header('www-authenticate', 'Bearer realm="rendezvous-admin"'), 401, 'send the admin token as Authorization: Bearer TOKEN', why)
  }
}
