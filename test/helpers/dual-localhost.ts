import dns from 'node:dns'

/**
 * Makes `localhost` resolve to both 127.0.0.1 and ::1, as /etc/hosts does on
 * most machines (this one may name only 127.0.0.1), until `teardown` runs
 * what it is given: Fastify then binds the second address with a server of
 * its own.
 */
export function dualStackLocalhost (teardown: (fn: () => void) => void): void {
  const lookup = dns.lookup
  const dual = [{ address: '127.0.0.1', family: 4 }, { address: '::1', family: 6 }]
  ;(dns as { lookup: unknown }).lookup = (host: string, options: unknown, callback?: unknown): void => {
    const cb = (typeof options === 'function' ? options : callback) as (...args: unknown[]) => void
    if (host !== 'localhost') return (lookup as (...args: unknown[]) => void)(host, options, callback)
    const all = typeof options === 'object' && options !== null && (options as { all?: boolean }).all === true
    process.nextTick(() => all ? cb(null, dual) : cb(null, dual[0].address, dual[0].family))
  }
  teardown(() => { dns.lookup = lookup })
}
