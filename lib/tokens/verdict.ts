/** What a token verifier says. `true`/`false` are accepted from user verifiers as shorthand. */
export type TokenVerdict =
  | { ok: true, kind: string }
  | { ok: false, reason: string, status?: 401 | 503 }

export type VerifyToken = (id: string, token: string) => boolean | TokenVerdict | Promise<boolean | TokenVerdict>

export type TotpMode = 'strict' | 'reuse' | 'off'
