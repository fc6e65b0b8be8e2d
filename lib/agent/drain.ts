import type net from 'node:net'

/** Waits for `sockets` to close, at most `graceMs` (undefined: as long as they last), then cuts what is left. */
export async function drainSockets (sockets: ReadonlySet<net.Socket>, graceMs: number | undefined): Promise<void> {
  if (sockets.size === 0) return
  const all = [...sockets].map((s) => new Promise<void>((resolve) => {
    if (s.destroyed) resolve()
    else s.once('close', () => resolve())
  }))
  const grace = graceMs === undefined ? [] : [new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref())]
  await Promise.race([Promise.all(all), ...grace])
  for (const s of sockets) s.destroy()
  await Promise.all(all)
}
