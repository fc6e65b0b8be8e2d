// A --to whose scheme does not match its service, or whose certificate is refused: named as such, with the flags that fix it.
import createError from '@fastify/error'
import * as net from 'node:net'
import * as tls from 'node:tls'
import { certificateProblem } from './certificates'
import type { LocalTarget } from './forward'

/** An https:// local service answered in something that is not TLS (plain HTTP, most likely). */
export const LocalNotTlsError = createError('FST_RENDEZVOUS_AGENT_LOCAL_NOT_TLS', 'the local service %s does not speak TLS: if it is plain HTTP, use --to http://%s (the library\'s to option)', 502)

/** An https:// local service presented a certificate the agent does not accept. */
export const LocalCertificateError = createError<'FST_RENDEZVOUS_AGENT_LOCAL_CERTIFICATE', 502, [where: string, code: string, advice: string, options?: { cause?: Error }]>('FST_RENDEZVOUS_AGENT_LOCAL_CERTIFICATE', 'the local service %s presented a certificate this agent rejects (%s): %s', 502)

/**
 * The error a failed dial of an https:// local service is reported as: OpenSSL's
 * record-layer text, or a bare "self-signed certificate", names no flag.
 * Undefined when it is neither of these mistakes.
 */
export function localTlsError (err: Error, target: LocalTarget): Error | undefined {
  if (target.tls === undefined) return undefined
  const where = hostPort(target)
  const code = String((err as NodeJS.ErrnoException).code ?? '')
  // Only this code is certain: the first bytes back were no TLS record. A close or reset during the handshake is not.
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER') return new LocalNotTlsError(where, where, { cause: err })
  const problem = certificateProblem(code)
  if (problem === undefined) return undefined
  const skip = 'or skip the check with --to-insecure (toInsecure)'
  const advice = problem === 'name_mismatch'
    ? `it does not carry the name in --to (${target.host}): use a name it carries, ${skip}`
    : problem === 'unknown_issuer'
      ? (target.tls.ca === undefined ? `trust it with --to-ca FILE, its certificate or its CA (toCa), ${skip}` : `it is not a --to-ca certificate nor signed by one: give the right one, ${skip}`)
      : 'the service must renew it, or this machine\'s clock is wrong; --to-insecure (toInsecure) skips the check'
  return new LocalCertificateError(where, code, advice, { cause: err })
}

/**
 * Whether the service at a plain http:// `target` completes a TLS handshake:
 * asked once it closed or reset a connection before a byte, which is what a
 * TLS server does with a plain request (it sends no alert to tell). Only a
 * handshake that completes counts; the certificate is not checked.
 */
export function speaksTls (target: LocalTarget, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tls.connect({
      host: target.host,
      port: target.port,
      servername: net.isIP(target.host) === 0 ? target.host : undefined,
      rejectUnauthorized: false
    })
    const done = (yes: boolean): void => {
      clearTimeout(timer)
      socket.destroy()
      resolve(yes)
    }
    const timer = setTimeout(() => done(false), timeoutMs)
    socket.once('secureConnect', () => done(true))
    socket.once('error', () => done(false))
    socket.once('close', () => done(false))
  })
}

/** The hint a plain local service's early close gets when the service turned out to speak TLS. */
export function tlsHint (target: LocalTarget): string {
  return `; it speaks TLS: use --to https://${hostPort(target)} (the library's to option)`
}

function hostPort (target: LocalTarget): string {
  return `${net.isIPv6(target.host) ? `[${target.host}]` : target.host}:${target.port}`
}
