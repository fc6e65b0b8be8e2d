/** How often the same peer failure is a warning; the repeats are debug lines. */
export const WARN_EVERY_MS = 60_000

/** What a 401 between nodes usually means, added to its log lines on both sides. */
export const SECRET_HINT = ' (is --cluster-secret the same on every node?)'

// A misconfigured peer fails every ask while clients wait (four times a second per client).
export { failureReporter, logLimiter } from '../relay/log-limit'
