import type { FastifyReply } from 'fastify'
import { printable } from '../http/log-text'

/**
 * The `error` of every answer of the admin API that is not a success, by
 * status: a short fixed vocabulary that scripts can match on
 * (docs/operations.md, Administration). The message says what is wrong.
 */
const ERRORS: Record<number, string> = {
  400: 'bad_request',
  401: 'unauthorized',
  404: 'not_found',
  405: 'method_not_allowed',
  408: 'request_timeout',
  409: 'conflict',
  413: 'body_too_large',
  415: 'unsupported_media_type',
  421: 'misdirected_request',
  431: 'headers_too_large',
  500: 'internal_error',
  501: 'not_supported',
  503: 'unavailable'
}

export function errorWord (status: number): string {
  return ERRORS[status] ?? (status < 500 ? 'bad_request' : 'internal_error')
}

/**
 * Answers a client's mistake (a 4xx) as `{"error","message"}`, and logs it as
 * one line at info: an operator's failed action is worth a line, its stack
 * trace is not. `why` goes in the log instead of the message when they differ;
 * it may quote what the client sent (its Host), so its control characters are escaped.
 */
export function refuse (reply: FastifyReply, status: number, message: string, why = message): FastifyReply {
  const error = errorWord(status)
  reply.log.info({ status, error, message: printable(why) }, 'admin request refused')
  return reply.code(status).send({ error, message })
}
