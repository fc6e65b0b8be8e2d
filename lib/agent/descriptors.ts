import createError from '@fastify/error'

/*
 * File descriptors, the agent's scarcest resource under a low open-file
 * limit (systemd's LimitNOFILE=, ulimit -n). A parked connection holds one;
 * once a client takes it, dialling the local service needs a second one,
 * while the pool is topped up again beside it. Out of descriptors, that dial
 * fails and the client gets a 502, so the pool must never eat the
 * descriptors its own taken connections will need.
 */

/** Descriptors left to the agent itself: stdio, libuv's own, DNS lookups, probes, CONNECTs that replace aged ones. */
export const DESCRIPTOR_RESERVE = 32

/**
 * The most connections the pool may hold under `limit`: every parked one,
 * plus the one it takes for the local service once a client takes it, plus
 * the reserve, fit in the limit. At least 1; undefined when there is no
 * limit to fit in.
 */
export function poolThatFits (limit: number | undefined): number | undefined {
  if (limit === undefined) return undefined
  return Math.max(1, Math.floor((limit - DESCRIPTOR_RESERVE) / 2))
}

/** Said once at start when the pool asked for does not fit the open-file limit; undefined when it fits. */
export function poolWarning (pool: number, limit: number | undefined): string | undefined {
  const fits = poolThatFits(limit)
  if (fits === undefined || pool <= fits) return undefined
  return `--pool ${pool} does not fit the open-file limit of ${limit}: each parked connection takes a file descriptor, ` +
    `and one more for the local service once a client takes it, and the agent keeps ${DESCRIPTOR_RESERVE} for itself, ` +
    `so it keeps ${fits} parked; lower --pool to ${fits}, or raise the limit to ${2 * pool + DESCRIPTOR_RESERVE} (LimitNOFILE=, ulimit -n)`
}

/** A dial (to the rendezvous or the local service) failed because descriptors ran out, this process's or the system's. */
export const OutOfDescriptorsError = createError('FST_RENDEZVOUS_AGENT_NO_DESCRIPTORS', '%s: %s', 502)

/** `err` named for what it is when it is EMFILE or ENFILE, else undefined. */
export function outOfDescriptors (err: Error, limit: number | undefined): Error | undefined {
  const code = (err as NodeJS.ErrnoException).code
  if (code === 'EMFILE') return new OutOfDescriptorsError(`the agent has no file descriptor left (${limit === undefined ? 'its open-file limit' : `open-file limit ${limit}`})`, err.message, { cause: err })
  if (code === 'ENFILE') return new OutOfDescriptorsError('the system has no file descriptor left (its table of open files is full)', err.message, { cause: err })
  return undefined
}

/** Whether `err` is one outOfDescriptors() made. */
export function isOutOfDescriptors (err: Error | undefined): boolean {
  return (err as { code?: string } | undefined)?.code === 'FST_RENDEZVOUS_AGENT_NO_DESCRIPTORS'
}
