import { readFileSync } from 'node:fs'
import { join } from 'node:path'

const dir = join(__dirname, '..', 'fixtures')

/** A self-signed certificate for localhost, 127.0.0.1 and ::1, valid for ten years. */
export const tlsKey = readFileSync(join(dir, 'key.pem'))
export const tlsCert = readFileSync(join(dir, 'cert.pem'))
export const tlsCertPath = join(dir, 'cert.pem')
export const tlsKeyPath = join(dir, 'key.pem')

/** A second, unrelated certificate, for tests that expect a mismatch. */
export const otherKey = readFileSync(join(dir, 'other-key.pem'))
export const otherCert = readFileSync(join(dir, 'other-cert.pem'))
export const otherCertPath = join(dir, 'other-cert.pem')
export const otherKeyPath = join(dir, 'other-key.pem')
