import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { generate } from 'selfsigned'

export interface DatedPair { cert: string, key: string, certPath: string, keyPath: string }

/**
 * A self-signed pair for localhost, 127.0.0.1 and ::1, valid from `notBefore`
 * to `notAfter`, written as `<name>.crt` and `<name>.key` in `dir`: a
 * certificate that expired, or one whose validity starts later.
 */
export async function datedPair (dir: string, name: string, notBefore: Date, notAfter: Date): Promise<DatedPair> {
  const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: notBefore,
    notAfterDate: notAfter,
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }, { type: 7, ip: '::1' }] }
    ]
  })
  const certPath = join(dir, `${name}.crt`)
  const keyPath = join(dir, `${name}.key`)
  writeFileSync(certPath, pems.cert)
  writeFileSync(keyPath, pems.private, { mode: 0o600 })
  return { cert: pems.cert, key: pems.private, certPath, keyPath }
}

const DAY = 86_400_000

/** Dates around now: `days(-2)` is two days ago. */
export const days = (n: number): Date => new Date(Date.now() + n * DAY)
export const minutes = (n: number): Date => new Date(Date.now() + n * 60_000)
