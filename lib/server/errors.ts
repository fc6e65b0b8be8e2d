import createError from '@fastify/error'

// Stable codes: callers (the CLI among them) match on `err.code`. Messages are one line and name the file.
/** A certificate or key that cannot be used: not PEM, encrypted, not a pair. */
export const CertificateError = createError('FST_RENDEZVOUS_CERTIFICATE', '%s', 500)
/**
 * A key that is not the certificate's: a CertificateError with its code,
 * told apart so that a reload can say a renewal is half-written.
 */
// The cast: createError's types want Error as the base, though any error constructor works as one.
export const KeyMismatchError = createError('FST_RENDEZVOUS_CERTIFICATE', '%s', 500, CertificateError as unknown as ErrorConstructor)
/**
 * A certificate outside its dates: expired, or not valid yet. A
 * CertificateError with its code, told apart so that a reload can say the
 * files are not yet (or no longer) fit to serve while the current pair is.
 */
export const CertificateDatesError = createError('FST_RENDEZVOUS_CERTIFICATE', '%s', 500, CertificateError as unknown as ErrorConstructor)
/** A certificate file or directory that cannot be read, written or created. */
export const TlsFileError = createError('FST_RENDEZVOUS_TLS_FILE', '%s', 500)
