import createError from '@fastify/error'

// Stable codes: users match on `err.code`, so these never change meaning.
export const RendezvousOptionError = createError('FST_RENDEZVOUS_BAD_OPTION', 'Invalid rendezvous option: %s', 500, TypeError)
export const HandoffUnsupportedError = createError('FST_RENDEZVOUS_HANDOFF_UNSUPPORTED', 'This Node.js version does not expose the HTTP parser hook the hand-off needs: %s', 500)
export const InvalidIdError = createError('FST_RENDEZVOUS_INVALID_ID', 'Invalid ID %s: use 1 to 128 characters of [A-Za-z0-9._~-]', 400)
export const InvalidSecretError = createError('FST_RENDEZVOUS_INVALID_SECRET', 'Invalid secret: %s; a secret is base32 (RFC 4648) of 20 bytes or more', 400)
export const IdExistsError = createError('FST_RENDEZVOUS_ID_EXISTS', 'The ID %s is already provisioned', 409)
export const RegistryNotSyncError = createError('FST_RENDEZVOUS_REGISTRY_NOT_SYNC', 'registry.get() returned a promise; it must answer synchronously from a local view', 500)
export const RegistryCorruptError = createError('FST_RENDEZVOUS_REGISTRY_CORRUPT', 'The registry file %s cannot be read: %s', 500)
/** The registry's lock was not free in time: the lock file, and by whom it is held after how long. */
export const RegistryLockedError = createError('FST_RENDEZVOUS_REGISTRY_LOCKED', 'The registry lock %s is still held %s', 503)
/** ids.json (or its lock) could not be written: the file and why, in plain words. Nothing was changed. */
export const RegistryWriteError = createError('FST_RENDEZVOUS_REGISTRY_WRITE', 'Cannot write the registry file %s: %s', 503)
export const RegistryInsecureError = createError('FST_RENDEZVOUS_REGISTRY_INSECURE', 'Refusing to use %s: %s', 500)
export const RegistryConflictError = createError('FST_RENDEZVOUS_REGISTRY_CONFLICT', 'The ID %s kept changing while it was rotated (%s attempts); try again', 503)
/** A rotation would keep more old secrets than a record holds: the ID, how many, and when the first of them expires. */
export const OldSecretsFullError = createError('FST_RENDEZVOUS_OLD_SECRETS_FULL', 'The ID %s already has %s old secrets still accepted, the next to expire at %s: rotate again after that, or now with an overlap of 0, which revokes every old secret at once', 409)
/** A rotation to the secret the ID already has: the ID. */
export const SecretUnchangedError = createError('FST_RENDEZVOUS_SECRET_UNCHANGED', 'The ID %s already has this secret: a rotation must give it another one (or none, to have one generated)', 400)
/** The admin token a function option returned cannot be used (why); the admin listener refuses every request meanwhile. */
export const AdminTokenError = createError('FST_RENDEZVOUS_ADMIN_TOKEN', 'The admin token %s', 500)
/** A listener of its own (admin, metrics) that cannot listen: its address and why. */
export const ListenerError = createError('FST_RENDEZVOUS_LISTENER', 'The %s listener cannot listen on %s: %s', 500)
/** `splice: 'native'` was asked for and the addon cannot be used: why. */
export const NativeSpliceUnavailableError = createError('FST_RENDEZVOUS_NATIVE_UNAVAILABLE', "splice: 'native' was asked for, but the native data path cannot be used: %s", 500)
export const RedisUnreachableError = createError('FST_RENDEZVOUS_REDIS_UNREACHABLE', 'Cannot reach Redis: %s', 503)
/** A change sent to Redis that was not answered in time: Redis may still apply it. */
export const RedisOutcomeUnknownError = createError('FST_RENDEZVOUS_REDIS_OUTCOME_UNKNOWN', 'Redis did not answer in time; the change may still be applied: list the IDs to see', 503)
/** The replay journal in the data dir cannot be read or written: the file and why. Tokens are refused meanwhile. */
export const ReplayJournalError = createError('FST_RENDEZVOUS_REPLAY_JOURNAL', 'The replay journal %s: %s', 503)
/** The data dir cannot be created or is not a directory, at start: the dir, and why in plain words. */
export const DataDirError = createError('FST_RENDEZVOUS_DATA_DIR', 'The data dir %s cannot be used: %s', 500)
/** An app's `throttleStore` call failed (its own message): the CONNECT or request that met it is answered 503. */
export const ThrottleStoreError = createError('FST_RENDEZVOUS_THROTTLE_STORE', 'The throttle store failed: %s', 503)
