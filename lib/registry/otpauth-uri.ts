import { Secret, TOTP } from 'otpauth'

/**
 * The `otpauth://totp/...` URI of an identity, for authenticator apps and for
 * hidden servers built for the original relay (docs/protocol.md, the TOTP token form).
 * The parameters mirror what the server's TOTP verifier accepts.
 */
export function otpauthUri (identity: { id: string, secret: string }): string {
  return new TOTP({
    issuer: 'rendezvous',
    label: identity.id,
    algorithm: 'SHA1',
    digits: 6,
    period: 30,
    secret: Secret.fromBase32(identity.secret)
  }).toString()
}
