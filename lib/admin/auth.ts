import { createHash, timingSafeEqual } from 'node:crypto'
import type { onRequestHookHandler } from 'fastify'

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
    reply.code(401)
      .header('www-authenticate', 'Bearer realm="rendezvous-admin"')
      .send({ error: 'unauthorized', message: 'send the admin token as Authorization: Bearer TOKEN' })
  }
}
