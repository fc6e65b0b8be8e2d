import type { Socket } from 'node:net'

/**
 * Hidden servers parked on other nodes (cluster mode). The relay core knows
 * only this interface, so it does not depend on how nodes find each other.
 */
export interface RemoteSource {
  /**
   * Asks another node for a connection parked for `id` and has `head` (the
   * request head and any bytes read after it) delivered to it. Resolves with
   * the link to splice with the client; 'none' when no node holds one;
   * 'unavailable' when the cluster state cannot be read right now.
   */
  open: (id: string, head: Buffer, signal: AbortSignal) => Promise<Socket | 'none' | 'unavailable'>
  /** While a client waits, how often other nodes are asked again, in ms. */
  retryInterval: number
}
