/** One provisioned hidden server. */
export interface IdentityRecord {
  /** Canonical (lower-case) ID. */
  id: string
  /** The secret in upper-case base32 without padding (docs/protocol.md, Identities). */
  secret: string
  /** ISO 8601 time of provisioning. */
  createdAt: string
  /** After a rotation: the secret it replaced, still accepted until `previousExpiresAt`. */
  previousSecret?: string
  /** ISO 8601 end of the rotation overlap. */
  previousExpiresAt?: string
  /**
   * Secrets replaced by rotations before the one above, each still accepted
   * until its own `expiresAt`: a rotation inside another's overlap does not
   * cut short what that one promised.
   */
  olderSecrets?: readonly OldSecret[]
}

/** A secret a rotation replaced, accepted until `expiresAt` (ISO 8601). */
export interface OldSecret {
  secret: string
  expiresAt: string
}

export interface RotateSecret {
  /**
   * The new secret (base32; spaces, lower case and trailing `=` are accepted
   * and removed); generated when absent. The current one is refused
   * (FST_RENDEZVOUS_SECRET_UNCHANGED).
   */
  secret?: string
  /** How long the replaced secret stays accepted, in ms. 0 refuses it, and every older one, at once. */
  overlapMs: number
}

export interface AddIdentity {
  id?: string
  /** Base32 of 20 bytes or more, as canonicalSecret accepts it; generated when absent. */
  secret?: string
}

/**
 * Where IDs and their secrets live. `get` is synchronous on purpose: the
 * mobile side decides inside Node's header callback whether a request is a
 * rendezvous, so every implementation keeps a local view that it refreshes
 * (the file registry by polling, a Redis registry by pub/sub).
 */
export interface Registry {
  /** Loads the first view. The plugin awaits it before it listens. */
  ready (): Promise<void>
  /** The record for a canonical ID in the local view, if any. */
  get (id: string): IdentityRecord | undefined
  list (): Promise<IdentityRecord[]>
  /** Provisions an ID. Rejects with RENDEZVOUS_ID_EXISTS when it is taken. */
  add (input?: AddIdentity): Promise<IdentityRecord>
  /** Removes an ID; resolves false when it was not there. */
  remove (id: string): Promise<boolean>
  /**
   * Calls back whenever an ID leaves the view, whoever removed it, and when
   * its old secrets are cut off (a rotation without overlap, or the ID
   * removed and added again). Returns an unsubscribe function. Called once
   * `get` shows the change: a CONNECT whose token was being checked then
   * is parked only if `get` still accepts its secret, and the listeners
   * close the ones parked before.
   */
  onRemove (listener: (id: string) => void): () => void
  /**
   * True while the local view may miss IDs (a Redis registry cut off from
   * Redis): the relay then answers 503 rather than 404 for an ID it lacks.
   */
  stale? (): boolean
  /**
   * Replaces an ID's secret, keeping the old one for an overlap. Resolves
   * undefined when the ID is not there. Optional: registries without it
   * cannot rotate.
   */
  rotate? (id: string, input: RotateSecret): Promise<IdentityRecord | undefined>
  /**
   * Rejects when the registry cannot be reached or read now; readiness
   * probes call it. Optional: without it a loaded registry counts as reachable.
   */
  check? (): Promise<void>
  /**
   * Calls back when reading the registry starts failing (with the error) and
   * when it succeeds again (undefined): once each, however often it is read
   * meanwhile. The plugin logs both. Returns an unsubscribe function.
   */
  onHealth? (listener: (error: Error | undefined) => void): () => void
  close (): Promise<void>
}
