import type { IncomingMessage } from 'node:http'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler, preValidationHookHandler } from 'fastify'
import { errorCodes as fastifyErrors } from 'fastify'
import { ID_PATTERN } from '../registry/ids'
import { InvalidIdError } from '../errors'
import type { AdminCount } from './metrics'
import { errorWord, refuse } from './refusal'
import { SECURITY_HEADERS } from './raw-answers'
import { logLimiter } from '../relay/log-limit'

const { FST_ERR_CTP_INVALID_MEDIA_TYPE } = fastifyErrors

// What the admin routes accept, checked by Fastify before any handler runs,
// and the 400s that tell the caller which field is wrong.

export const ID_PARAMS = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: ID_PATTERN.source } }
} as const

const body = (properties: Record<string, object>) => ({ type: 'object', additionalProperties: false, properties }) as const

export const ADD_BODY = body({ id: { type: 'string' }, secret: { type: 'string' } })
export const ROTATE_BODY = body({ overlapSeconds: { type: 'number' }, secret: { type: 'string' } })
/** disconnect and remove take no fields; the page sends `{}`. */
export const EMPTY_BODY = body({})

/**
 * The validator options of the admin listener: no coercion, so that
 * `{"id":12345}` is refused rather than taken as the ID "12345", and nothing
 * removed, so that a misspelt field is refused rather than ignored.
 */
export const AJV_OPTIONS = { coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false } as const

/**
 * Longest path parameter the router hands to a route: an ID of 128
 * characters, each percent-encoded, fits; longer ones get badPath's 400
 * instead of Fastify's 414.
 */
export const MAX_PARAM_LENGTH = 1024

interface ValidationIssue { keyword: string, instancePath: string, params: Record<string, unknown> }

/** The message of a schema refusal, naming the field and what it must be. */
export function validationMessage (err: FastifyError, request: FastifyRequest): string {
  const issue = (err.validation?.[0] ?? {}) as ValidationIssue
  if (err.validationContext === 'params') {
    return new InvalidIdError(JSON.stringify(String((request.params as { id?: unknown }).id).slice(0, 140))).message
  }
  const field = issue.instancePath.replace(/^\//, '')
  if (field === '') {
    if (issue.keyword === 'additionalProperties') return `unknown field ${JSON.stringify(issue.params.additionalProperty)} in the JSON body`
    return 'the body must be a JSON object'
  }
  return `${field} must be a ${String(issue.params.type)}`
}

/**
 * The admin listener's body parsers: Fastify's JSON one, except that an
 * empty body is no body, whatever its Content-Type says. Clients that always
 * send a Content-Type (`application/json`, or curl's form type for `-d ''`)
 * also send it on a DELETE or disconnect, which take no body; Fastify refuses
 * those with 400 or 415. A body that is there and is not JSON stays a 415.
 */
export function emptyIsNoBody (app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser('error', 'error')
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body.length === 0) done(null, undefined)
    else parse(request, body as string, done)
  })
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (request, body, done) => {
    if (body.length === 0) done(null, undefined)
    else done(new FST_ERR_CTP_INVALID_MEDIA_TYPE(request.headers['content-type']))
  })
}

// An ID of dots only, each written %252E, as the ID's whole segment.
const DOTS_ID = /^(\/api\/ids\/)((?:%252e)+)(?=[/?]|$)/i

/**
 * Fastify's `rewriteUrl` for the admin listener. `.` and `..` are valid
 * IDs, but URL parsers (fetch, browsers, curl) remove such path segments,
 * written %2E too (WHATWG URL's dot segments), so no browser can send
 * `/api/ids/./rotate`. The page writes each dot of such an ID as %252E, and
 * this turns them into %2E, which the router decodes to the dots. `%` is in
 * no ID, so nothing that names another ID is read differently.
 */
export function dotIdsUnescaped (this: unknown, request: IncomingMessage): string {
  const url = request.url ?? '/'
  return url.replace(DOTS_ID, (_whole, prefix: string, dots: string) => prefix + '%2E'.repeat(dots.length / 5))
}

/** A request without a body (no Content-Type, nothing sent) is validated as `{}`: every field is optional. */
export const noBodyIsEmpty: preValidationHookHandler = (request, _reply, done) => {
  // undefined only: a JSON `null` is a body, and is refused.
  if (request.body === undefined) request.body = {}
  done()
}

/**
 * The admin listener's error handler: every error in the API's own format
 * (refusal.ts). A client's mistake (schema, body parser, a taken ID) is one
 * line at info; a failure of ours (500) is logged at error with its stack.
 * A store that cannot answer (503: Redis away, the registry's lock) is no
 * bug of ours, and the admin page asks every second: one warn line a minute
 * per cause, the rest at debug, no stack.
 */
export function adminErrors (): (err: FastifyError, request: FastifyRequest, reply: FastifyReply) => FastifyReply {
  const warnNow = logLimiter(60_000)
  return (err, request, reply) => {
    // The client left in the middle of its body: no answer can reach it, and the parser's clientError has
    // answered and counted what could be (raw-answers.ts); a second answer would be counted twice.
    const socket = request.raw.socket
    if (socket.destroyed || socket.writableEnded) {
      reply.log.debug({ error: err.message }, 'admin request abandoned by its client')
      return reply.hijack()
    }
    if (err.validation !== undefined) return refuse(reply, 400, validationMessage(err, request))
    if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return refuse(reply, 415, 'send a JSON body, with Content-Type: application/json')
    // The registry's FastifyErrors and Fastify's own carry their status; anything else is a failure of ours.
    const status = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500
    if (status < 500) return refuse(reply, status, err.message)
    const error = errorWord(status)
    if (status === 503) {
      reply.log[warnNow(err.code ?? err.message) ? 'warn' : 'debug']({ status, error, code: err.code, message: err.message }, 'admin request failed: the store cannot answer; repeats within a minute are debug lines')
    } else {
      reply.log.error({ err }, 'admin request failed')
    }
    return reply.code(status).send({ error, message: err.message })
  }
}

/**
 * Fastify's `frameworkErrors` for the admin listener: a path the router
 * cannot decode, or a parameter past MAX_PARAM_LENGTH, is a malformed ID (400),
 * after the same Host and bearer checks as every /api/ request. Fastify runs
 * no hooks here, so the answer is counted, and given its headers, here.
 */
export function badPath (guard: onRequestHookHandler, count: AdminCount): (err: FastifyError, request: FastifyRequest, reply: FastifyReply) => void {
  return (err, request, reply) => {
    // No onSend hook runs here either.
    reply.headers(SECURITY_HEADERS)
    guard.call(request.server, request, reply, () => {
      const why = err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'longer than 128 characters' : 'not valid percent-encoding'
      refuse(reply, 400, new InvalidIdError(`in the path (${why})`).message)
    })
    count(request.method, undefined, reply.statusCode)
  }
}
