/** Runs `work` with a signal that aborts as soon as one of `signals` does; it is already aborted if one is. */
export async function untilAnyAborts<T> (signals: AbortSignal[], work: (either: AbortSignal) => Promise<T>): Promise<T> {
  const either = new AbortController()
  const abort = (): void => either.abort()
  // Listeners come off when the work ends: the shutdown signal outlives every request.
  for (const signal of signals) {
    if (signal.aborted) either.abort()
    else signal.addEventListener('abort', abort, { once: true })
  }
  try {
    return await work(either.signal)
  } finally {
    for (const signal of signals) signal.removeEventListener('abort', abort)
  }
}

/** Runs `work` with a signal that aborts when `signal` does or at `deadline` (ms since the epoch), whichever is first. */
export async function untilDeadline<T> (signal: AbortSignal, deadline: number, work: (bounded: AbortSignal) => Promise<T>): Promise<T> {
  const late = new AbortController()
  const timer = setTimeout(() => late.abort(), Math.max(0, deadline - Date.now()))
  try {
    return await untilAnyAborts([signal, late.signal], work)
  } finally {
    clearTimeout(timer)
  }
}
