import { createHash, timingSafeEqual } from 'node:crypto'
import type { onRequestHookHandler } from 'fastify'
import { refuse } from './refusal'

// Compared as digests so that neither the length nor the bytes of the token leak through timing.
const digest = (value: string): Buffer => createHash('sha256').update(value).digest()

/** Lets a request on only with `Authorization: Bearer <token>`; the refusal is a 401 with the challenge. */
export function bearerCheck (token: string): onRequestHookHandler {
  const expected = digest(token)
  return function adminBearer (request, reply, done) {
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
