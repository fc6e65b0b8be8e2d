const guarded = new WeakSet<NodeJS.WritableStream>()

/** What a daemon's output may hold unwritten before its lines are dropped. */
export const MAX_UNWRITTEN_OUTPUT = 1024 * 1024

/**
 * A daemon must never die because nobody reads its logs: when stdout or
 * stderr is a pipe whose reader went away (`| head`, a log shipper that
 * restarts), writes fail with EPIPE, and an 'error' event without a listener
 * would end the process. The lines are dropped instead; and so are the lines
 * for a reader that stays but stopped reading (a stalled log pipe), once
 * MAX_UNWRITTEN_OUTPUT waits, which would otherwise pile up in memory.
 */
export function ignoreOutputErrors (...streams: NodeJS.WritableStream[]): void {
  for (const stream of streams) {
    if (guarded.has(stream)) continue
    guarded.add(stream)
    stream.on('error', () => {})
    dropWhenStalled(stream as NodeJS.WritableStream & { writableLength?: number })
  }
}

function dropWhenStalled (stream: NodeJS.WritableStream & { writableLength?: number }): void {
  const write = stream.write.bind(stream) as (...args: unknown[]) => boolean
  stream.write = ((...args: unknown[]): boolean => {
    if ((stream.writableLength ?? 0) <= MAX_UNWRITTEN_OUTPUT) return write(...args)
    const done = args.find(arg => typeof arg === 'function') as (() => void) | undefined
    if (done !== undefined) process.nextTick(done)
    return false
  }) as typeof stream.write
}
