/**
 * The range of a TCP keep-alive delay Node actually applies, in ms. Node
 * passes whole seconds to the kernel, and Linux takes at most 32,767 of them
 * (TCP_KEEPIDLE); a shorter or longer value is not refused but silently
 * replaced by the system's own delay, two hours by default. So every
 * keep-alive option is checked against it.
 */
export const MIN_KEEPALIVE_MS = 1000
export const MAX_KEEPALIVE_MS = 32_767_000

/** What a keep-alive delay must be, to finish "NAME must be ...": the plugin's and the agent's words alike. */
export const WITHIN_KEEPALIVE_LIMIT = `from ${MIN_KEEPALIVE_MS} to ${MAX_KEEPALIVE_MS} ms (1 s to 32767 s, what the kernel takes; outside it the system's own delay is used unsaid)`

export function isKeepAliveDelay (ms: number): boolean {
  return ms >= MIN_KEEPALIVE_MS && ms <= MAX_KEEPALIVE_MS
}
