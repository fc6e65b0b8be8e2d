/**
 * Every key and channel cluster mode uses, in one place. Each operation
 * touches a single key, so the layout also works on Redis Cluster.
 */
export class Keys {
  constructor (readonly prefix: string) {}

  /** Hash: canonical ID -> record JSON, plus the fields EPOCH and VERSION. */
  get ids (): string { return `${this.prefix}ids` }
  /** Channel announcing every change of `ids`. */
  get idsChannel (): string { return `${this.prefix}ids:changes` }
  replay (key: string): string { return `${this.prefix}replay:${key}` }
  throttle (key: string): string { return `${this.prefix}throttle:${key}` }
  /** String with a TTL: where a live node's peer listener is reached. */
  node (nodeId: string): string { return `${this.prefix}node:${nodeId}` }
  /** String with a TTL: the node ID that last published `address` (host:port) as its own. */
  address (address: string): string { return `${this.prefix}address:${address}` }
  /** Hash: node ID -> parked count, for one ID. */
  parked (id: string): string { return `${this.prefix}parked:${id}` }
}

// '#' is not in the ID alphabet, so these fields can never collide with an ID.
export const EPOCH_FIELD = '#epoch'
export const VERSION_FIELD = '#version'
