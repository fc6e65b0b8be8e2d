/**
 * Polls `check` every 10 ms until it holds; throws after `timeoutMs`.
 * Resolves with the time it took, in ms. Tests wait on state, never on sleeps.
 */
export async function until (check: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'the condition'): Promise<number> {
  const start = Date.now()
  while (!(await check())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
  return Date.now() - start
}
