import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import type { AnswerUnrouted } from './challenge'

/**
 * Fastify's `frameworkErrors` for an app with the plugin. A path the router
 * cannot decode (FST_ERR_BAD_URL: `/caf%E9.txt`, `/a%zz`) never reaches a
 * hook, yet it may well be a path of a hidden server: it is answered as if no
 * route matched, with the challenge (or 404 for an unknown ID), so that a
 * Digest client retries with its credential and is relayed. Other framework
 * errors keep Fastify's answer.
 */
export function frameworkErrors (error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const answer = (request.server as { rendezvous?: { answerUnrouted?: AnswerUnrouted } }).rendezvous?.answerUnrouted
  if (error.code === 'FST_ERR_BAD_URL' && answer !== undefined) {
    answer(request, reply)
    return
  }
  reply.code(error.statusCode ?? 500).send(error)
}
