const SIGNALS: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT']

/**
 * The first and second termination signals: the first closes gracefully, the
 * second forces it. `onHangup` subscribes to SIGHUP (reload), until `stop`.
 * `signals` are the ones that terminate: a process with nothing to reload
 * adds SIGHUP, which would otherwise kill it at once, relays and all.
 */
export interface Signals { first: Promise<string>, second: Promise<string>, onHangup: (fn: () => void) => void, stop: () => void }

export function watchSignals (signals: readonly NodeJS.Signals[] = SIGNALS): Signals {
  let count = 0
  let onFirst: (signal: string) => void = () => {}
  let onSecond: (signal: string) => void = () => {}
  const first = new Promise<string>(resolve => { onFirst = resolve })
  const second = new Promise<string>(resolve => { onSecond = resolve })
  const handler = (signal: string): void => {
    count += 1
    if (count === 1) onFirst(signal)
    else onSecond(signal)
  }
  for (const signal of signals) process.on(signal, handler)
  const hangups = new Set<() => void>()
  return {
    first,
    second,
    onHangup: fn => {
      hangups.add(fn)
      process.on('SIGHUP', fn)
    },
    stop: () => {
      for (const signal of signals) process.removeListener(signal, handler)
      for (const fn of hangups) process.removeListener('SIGHUP', fn)
    }
  }
}
