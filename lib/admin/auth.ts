import { createHash, timingSafeEqual } from 'node:crypto'
import type { onRequestHookHandler } from 'fastify'
import { currentAdminToken } from './options'
import { errorWord, refuse } from './refusal'

// Compared as digests so that neither the length nor the bytes of the token leak through timing.
const digest = (value: string): Buffer => createHash('sha256').update(value).digest()

/** The digest of the token as it is now: a function token (serve's, reread on SIGHUP) is asked each time. */
function expectedDigest (token: string | (() => string)): () => Buffer {
  let known: string | undefined
  let expected: Buffer = Buffer.alloc(0)
  return () => {
    const value = currentAdminToken(token)
    if (value !== known) {
      known = value
      expected = digest(value)
    }
    return expected
  }
}

/**
 * Lets a request on only with `Authorization: Bearer <token>`; the refusal
 * is a 401 with the challenge. A token function that fails, or returns no
 * usable token, refuses every request (500) rather than letting one on.
 */
export function bearerCheck (token: string | (() => string)): onRequestHookHandler {
  const current = expectedDigest(token)
  return function adminBearer (request, reply, done) {
    let expected: Buffer
    try {
      expected = current()
    } catch (err) {
      reply.log.error({ err }, 'the admin token is not usable; request refused')
      reply.code(500).send({ error: errorWord(500), message: 'the admin token is not usable; see the log' })
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

/**
 * Runs `check` on every request that matched a route other than `openRoutes`
 * (the page and its script, which hold nothing), before any handler runs.
 * Decided by the route the router matched, never by the raw URL: the router
 * decodes `/%61pi/ids` and takes the path out of an absolute-form target,
 * so a test of the URL's text let such requests reach the API unchecked.
 * A request that matched no route gets its 404 either way.
 */
export function bearerGuard (check: onRequestHookHandler, openRoutes: ReadonlySet<string>): onRequestHookHandler {
  return function adminGuard (request, reply, done) {
    const route = request.routeOptions.url
    if (route === undefined || openRoutes.has(route)) {
      done()
      return
    }
    check.call(this, request, reply, done)
  }
}
