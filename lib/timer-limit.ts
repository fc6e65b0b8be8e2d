/**
 * The longest delay Node's timers keep, in ms: 2^31 - 1, about 24.8 days. A
 * longer one fires after 1 ms instead, so every option that becomes a timer
 * is checked against it.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1

/** Why MAX_TIMER_MS, as messages say it. */
export const MAX_TIMER_WHY = 'about 24.8 days, the longest timer Node keeps'

/** What an option past MAX_TIMER_MS must be, to finish "NAME must be ...": the plugin's and the agent's words alike. */
export const WITHIN_TIMER_LIMIT = `at most ${MAX_TIMER_MS} ms (${MAX_TIMER_WHY})`
