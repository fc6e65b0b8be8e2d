const SIGNALS = ['SIGTERM', 'SIGINT'] as const

/**
 * The first and second termination signals: the first closes gracefully, the
 * second forces it. `onHangup` subscribes to SIGHUP (reload), until `stop`.
 */
export interface Signals { first: Promise<string>, second: Promise<string>, onHangup: (fn: () => void) => void, stop: () => void }

export function watchSignals (): Signals {
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
  for (const signal of SIGNALS) process.on(signal, handler)
  const hangups = new Set<() => void>()
  return {
    first,
    second,
    onHangup: fn => {
      hangups.add(fn)
      process.on('SIGHUP', fn)
    },
    stop: () => {
      for (const signal of SIGNALS) process.removeListener(signal, handler)
      for (const fn of hangups) process.removeListener('SIGHUP', fn)
    }
  }
}
