/**
 * Resolves once `arm`'s callback is called, or after `graceMs` (undefined:
 * only the former), whichever comes first; its timer does not outlive it.
 * How a closing agent waits for what it let go.
 */
export async function untilOrAfter (arm: (done: () => void) => void, graceMs: number | undefined): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  await new Promise<void>((resolve) => {
    arm(resolve)
    if (graceMs !== undefined) timer = setTimeout(resolve, graceMs).unref()
  })
  clearTimeout(timer)
}
