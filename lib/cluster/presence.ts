import { Keys } from './keys'
import { timed, type RedisConnection } from './redis-connection'

export interface PresenceOptions {
  nodeId: string
  /** host:port of this node's peer listener. */
  address: string
  keyPrefix: string
  /** How long a node stays on the map after its last heartbeat, in ms. */
  ttl: number
  heartbeat: number
  commandTimeout: number
  /** Sockets parked here now for an ID. */
  parkedFor: (id: string) => number
}

export interface PeerNode {
  nodeId: string
  address: string
  parked: number
}

/**
 * Publishes where this node is and how many sockets it holds per ID, and
 * finds the nodes that hold some for an ID. The node key carries a TTL that
 * the heartbeat renews, so a node that dies drops off within `ttl`; its
 * per-ID entries are ignored from then on and removed by whoever meets them.
 */
export class Presence {
  readonly #conn: RedisConnection
  readonly #o: PresenceOptions
  readonly #keys: Keys
  // IDs whose count changed since it was last written, and the counts last written.
  readonly #dirty = new Set<string>()
  readonly #published = new Map<string, number>()
  #timer: NodeJS.Timeout | undefined
  #flushing: Promise<void> | undefined
  #again = false
  #stopped = false

  constructor (conn: RedisConnection, opts: PresenceOptions) {
    this.#conn = conn
    this.#o = opts
    this.#keys = new Keys(opts.keyPrefix)
  }

  async start (): Promise<void> {
    await this.#flush()
    this.#timer = setInterval(() => { this.#schedule() }, this.#o.heartbeat)
    this.#timer.unref()
  }

  /** The parked count of `id` changed; it is written at once (coalesced), not at the next heartbeat. */
  changed (id: string): void {
    this.#dirty.add(id)
    this.#schedule()
  }

  /** Live nodes other than this one that hold sockets for `id`, most first. */
  async lookup (id: string): Promise<PeerNode[]> {
    const client = this.#conn.client
    const counts = await timed(client.hgetall(this.#keys.parked(id)), this.#o.commandTimeout)
    const candidates = Object.entries(counts).filter(([nodeId, n]) => nodeId !== this.#o.nodeId && Number(n) > 0)
    const addresses = await Promise.all(candidates.map(([nodeId]) => timed(client.get(this.#keys.node(nodeId)), this.#o.commandTimeout)))
    const live: PeerNode[] = []
    candidates.forEach(([nodeId, n], i) => {
      const address = addresses[i]
      if (typeof address === 'string') live.push({ nodeId, address, parked: Number(n) })
      else client.hdel(this.#keys.parked(id), nodeId).catch(() => {})
    })
    // Random among equals, so forwarding nodes do not all pick the same one.
    return live.map(node => ({ node, tie: Math.random() }))
      .sort((a, b) => b.node.parked - a.node.parked || a.tie - b.tie)
      .map(({ node }) => node)
  }

  /** Takes this node off the map. */
  async stop (): Promise<void> {
    this.#stopped = true
    clearInterval(this.#timer)
    await this.#flushing?.catch(() => {})
    const client = this.#conn.client
    const work = [client.del(this.#keys.node(this.#o.nodeId)), ...[...this.#published.keys()].map(id => client.hdel(this.#keys.parked(id), this.#o.nodeId))]
    await timed(Promise.all(work), this.#o.commandTimeout).catch(() => {})
  }

  #schedule (): void {
    if (this.#stopped) return
    if (this.#flushing !== undefined) {
      this.#again = true
      return
    }
    this.#flushing = this.#flush().catch(() => {}).finally(() => {
      this.#flushing = undefined
      if (this.#again) {
        this.#again = false
        this.#schedule()
      }
    })
  }

  async #flush (): Promise<void> {
    const { client } = this.#conn
    const { nodeId, address, ttl, commandTimeout } = this.#o
    const ids = [...this.#dirty]
    this.#dirty.clear()
    try {
      // GET tells whether the key was there: if not, Redis lost it (a restart, or we were away too long) and everything is rewritten.
      const previous = await timed(client.set(this.#keys.node(nodeId), address, 'PX', ttl, 'GET'), commandTimeout)
      if (previous === null) for (const id of this.#published.keys()) ids.push(id)
      await timed(Promise.all([...new Set(ids)].map(id => this.#write(id))), commandTimeout)
    } catch (err) {
      for (const id of ids) this.#dirty.add(id)
      throw err
    }
  }

  async #write (id: string): Promise<void> {
    const n = this.#o.parkedFor(id)
    const key = this.#keys.parked(id)
    if (n > 0) {
      await this.#conn.client.hset(key, this.#o.nodeId, String(n))
      this.#published.set(id, n)
    } else {
      await this.#conn.client.hdel(key, this.#o.nodeId)
      this.#published.delete(id)
    }
  }
}
