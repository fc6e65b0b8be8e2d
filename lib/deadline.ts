/**
 * `work`, or `late()` once `ms` have passed without it settling: its value
 * if it returns one, its error if it throws. The timer is cleared either
 * way, so a quick answer leaves nothing behind to hold the process open.
 * `work` itself is not cancelled; a caller that must stop it does so in
 * `late`.
 */
export async function within<T> (work: Promise<T>, ms: number, late: () => T): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<T>((resolve, reject) => {
    timer = setTimeout(() => {
      try {
        resolve(late())
      } catch (err) {
        reject(err)
      }
    }, ms)
  })
  try {
    return await Promise.race([work, deadline])
  } finally {
    clearTimeout(timer)
  }
}
