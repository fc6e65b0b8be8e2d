const guarded = new WeakSet<NodeJS.WritableStream>()

/**
 * A daemon must never die because nobody reads its logs: when stdout or
 * stderr is a pipe whose reader went away (`| head`, a log shipper that
 * restarts), writes fail with EPIPE, and an 'error' event without a listener
 * would end the process. The lines are dropped instead.
 */
export function ignoreOutputErrors (...streams: NodeJS.WritableStream[]): void {
  for (const stream of streams) {
    if (guarded.has(stream)) continue
    guarded.add(stream)
    stream.on('error', () => {})
  }
}
