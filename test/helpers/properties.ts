import fc from 'fast-check'

/**
 * Cases per property: small in the tap suite, at least 10,000 under
 * `npm run soak` (which sets RENDEZVOUS_PROPERTY_RUNS). A failing run prints
 * its seed; RENDEZVOUS_PROPERTY_SEED replays it.
 */
export const RUNS = Math.max(1, Number(process.env.RENDEZVOUS_PROPERTY_RUNS ?? 200))
const SEED = process.env.RENDEZVOUS_PROPERTY_SEED

export function params<T> (extra: fc.Parameters<T> = {}): fc.Parameters<T> {
  return { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: Number(SEED) }), ...extra }
}

const ID_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~-'

/** An ID as decisions allow: 1 to 128 characters of [A-Za-z0-9._~-]. */
export const anId = fc.string({ unit: fc.constantFrom(...ID_CHARS), minLength: 1, maxLength: 128 })

const TCHAR = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

/** An RFC 9110 token. */
export const aToken = (maxLength = 20): fc.Arbitrary<string> => fc.string({ unit: fc.constantFrom(...TCHAR), minLength: 1, maxLength })
