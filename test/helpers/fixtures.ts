/** A base32 secret of 20 bytes, as `ids add` would hand out. */
export const SECRET = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP'
/** Another valid secret, for "the wrong one". */
export const OTHER_SECRET = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ'
/** The raw key of the RFC 4226 / RFC 6238 test vectors. */
export const RFC_KEY = Buffer.from('12345678901234567890')

/** Restores process.env[name] as it was once the test ends, for a test that sets it. */
export function restoreEnvAfter (t: { teardown: (fn: () => void) => void }, name: string): void {
  const before = process.env[name]
  t.teardown(() => {
    if (before === undefined) delete process.env[name]
    else process.env[name] = before
  })
}
