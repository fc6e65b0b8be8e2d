import { unwatchFile, watchFile, type Stats } from 'node:fs'

export interface WatchOptions {
  /** How often the files are checked for a change, in ms. */
  interval?: number
  /** How long to wait after a change before acting, so that a renewal writing several files is seen whole, in ms. */
  settle?: number
}

/**
 * Calls `changed` once the files stop changing for `settle` ms after one of
 * them changed (a certificate renewal). Returns the function that stops
 * watching. Used for the public certificate and the peer link's files alike.
 */
export function watchFiles (files: string[], changed: () => void, opts: WatchOptions = {}): () => void {
  let timer: NodeJS.Timeout | undefined
  const later = (): void => {
    clearTimeout(timer)
    timer = setTimeout(changed, opts.settle ?? 1000)
  }
  const onChange = (now: Stats, before: Stats): void => {
    if (now.mtimeMs !== before.mtimeMs || now.ino !== before.ino || now.size !== before.size) later()
  }
  // watchFile polls stat(), which follows symlinks: Let's Encrypt's live/ links are repointed, not rewritten.
  for (const file of files) watchFile(file, { interval: opts.interval ?? 5000, persistent: false }, onChange)
  return () => {
    clearTimeout(timer)
    for (const file of files) unwatchFile(file, onChange)
  }
}
