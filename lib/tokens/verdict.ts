/**
 * What a token verifier says. `true`/`false` are accepted from user verifiers
 * as shorthand. `kind` names the kind of token in the logs (`custom` when a
 * verifier gives none). A refusal is answered 401, or 503 with Retry-After
 * when `status` is 503: the verifier could not decide now (its store is
 * away), and the hidden server should try again.
 */
export type TokenVerdict =
  | { ok: true, kind?: string }
  | { ok: false, reason: string, status?: 401 | 503 }

export type VerifyToken = (id: string, token: string) => boolean | TokenVerdict | Promise<boolean | TokenVerdict>

export type TotpMode = 'strict' | 'reuse' | 'off'
