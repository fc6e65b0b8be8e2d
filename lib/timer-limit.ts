/**
 * The longest delay Node's timers keep, in ms: 2^31 - 1, about 24.8 days. A
 * longer one fires after 1 ms instead, so every option that becomes a timer
 * is checked against it.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1
