import { LogController, type FastifyReply, type FastifyRequest } from 'fastify'

/**
 * Fastify's line for every request received and every request completed, at
 * debug level instead of info: probes, scrapes and Digest challenges would
 * otherwise write two lines each and drown the events that matter, which the
 * plugin logs itself. Errors keep their level.
 */
export class QuietRequestLog extends LogController {
  override incomingRequest (request: FastifyRequest): void {
    if (this.isLogDisabled(request)) return
    request.log.debug({ req: request }, 'incoming request')
  }

  override requestCompleted (error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply, metadata?: Record<string, unknown>): void {
    if (error !== null && error !== undefined) return super.requestCompleted(error, request, reply, metadata)
    if (this.isLogDisabled(request)) return
    reply.log.debug({ res: reply, responseTime: reply.elapsedTime }, 'request completed')
  }
}
