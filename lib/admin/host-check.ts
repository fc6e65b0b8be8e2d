import { isIPv4, isIPv6 } from 'node:net'
import type { onRequestHookHandler } from 'fastify'
import { lacksHost, NEEDS_HOST } from '../http/refusals'
import { refuse } from './refusal'

const IPV4_LOOPBACK = /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/

// The one spelling of ::1 a browser sends; the bind address may be written any way.
const canonicalIPv6 = (address: string): string => new URL(`http://[${address}]/`).hostname.slice(1, -1)

/** Whether a bound address (or the name it was bound by) is this machine's loopback. */
export function isLoopbackAddress (address: string): boolean {
  const host = address.toLowerCase()
  if (host === 'localhost') return true
  if (isIPv4(host)) return IPV4_LOOPBACK.test(host)
  if (!isIPv6(host)) return false
  const canonical = canonicalIPv6(host)
  return canonical === '::1' || (canonical.startsWith('::ffff:') && isLoopbackMapped(canonical))
}

// ::ffff:127.0.0.1 is written ::ffff:7f00:1 once canonical.
function isLoopbackMapped (canonical: string): boolean {
  return /^::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}$/.test(canonical)
}

// A Host field is a name or an IPv4 address, or an IPv6 address in brackets, and a port;
// anything else (userinfo, a path, spaces) is no host a browser sends.
const HOST_FIELD = /^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(:\d*)?$/

/** Whether a Host field names this machine's loopback: localhost, 127.x.y.z or [::1], with any port. */
export function isLoopbackHost (field: string): boolean {
  const match = HOST_FIELD.exec(field.toLowerCase())
  if (match === null) return false
  const host = match[1]
  if (host.startsWith('[')) return isIPv6(host.slice(1, -1)) && isLoopbackAddress(host.slice(1, -1))
  return host === 'localhost' || (isIPv4(host) && IPV4_LOOPBACK.test(host))
}

/**
 * DNS rebinding: a page on attacker.example whose name then resolves to
 * 127.0.0.1 talks to a loopback listener as its own origin, and the browser
 * sends `Host: attacker.example`. A listener bound to loopback only ever
 * has local clients, which name it localhost, 127.x.y.z or [::1] (with any
 * port: an SSH tunnel forwards from another one), so any other Host is
 * refused with 421, before the token is looked at. An HTTP/1.1 request
 * without Host gets 400, as RFC 9112 says; an HTTP/1.0 one is let on: no
 * browser sends one. `loopbackBind` is asked per
 * request: the address is known once the listener is bound.
 */
export function hostGuard (loopbackBind: () => boolean): onRequestHookHandler {
  return function adminHost (request, reply, done) {
    // Node's own check of this (requireHostHeader) is off on the listener: its 400 was empty, and never counted.
    if (lacksHost(request.raw)) {
      reply.header('connection', 'close')
      refuse(reply, 400, NEEDS_HOST)
      return
    }
    const host = request.headers.host
    if (host === undefined || !loopbackBind() || isLoopbackHost(host)) {
      done()
      return
    }
    refuse(reply, 421, 'the admin listener is bound to loopback and answers only to Host localhost, 127.0.0.1 or [::1] (any port)',
      `Host ${JSON.stringify(host.slice(0, 100))} is not a loopback name (DNS rebinding?)`)
  }
}
