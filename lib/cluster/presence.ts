import { Keys } from './keys'
import { scanTargets, timed, type RedisConnection } from './redis-connection'

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
  /** Another live node publishes this node's address as its own (two nodes given one --advertise): its node ID, at each heartbeat while it lasts. */
  onClash?: (nodeId: string) => void
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
 * After every reconnection the whole presence is written again: a Redis back
 * from a snapshot, an AOF that lost its last second or a promoted replica may
 * hold any older counts while the node key (renewed each second) survived.
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
  // Set by a reconnection: the next flush rewrites every count, not just the changed ones.
  #full = false
  // Whether this node has written its address key before: only then does another holder mean another live node.
  #claimed = false

  constructor (conn: RedisConnection, opts: PresenceOptions) {
    this.#conn = conn
    this.#o = opts
    this.#keys = new Keys(opts.keyPrefix)
  }

  async start (): Promise<void> {
    this.#conn.client.on('ready', this.#onReady)
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
    this.#conn.client.removeListener('ready', this.#onReady)
    await this.#flushing?.catch(() => {})
    const client = this.#conn.client
    const work = [client.del(this.#keys.node(this.#o.nodeId)), ...[...this.#published.keys()].map(id => client.hdel(this.#keys.parked(id), this.#o.nodeId))]
    await timed(Promise.all(work), this.#o.commandTimeout).catch(() => {})
  }

  // ioredis says 'ready' after each (re)connection; what Redis holds now is unknown.
  readonly #onReady = (): void => {
    this.#full = true
    this.#schedule()
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
    let full = this.#full
    this.#dirty.clear()
    this.#full = false
    try {
      // GET tells whether the key was there: if not, Redis lost it (a restart, or we were away too long) and everything is rewritten.
      const previous = await timed(client.set(this.#keys.node(nodeId), address, 'PX', ttl, 'GET'), commandTimeout)
      full ||= previous === null
      // Whatever this node believes it published or still has to publish: every ID it holds sockets for is among them.
      const rewrite = full ? [...ids, ...this.#published.keys()] : ids
      await timed(Promise.all([...new Set(rewrite)].map(id => this.#write(id))), commandTimeout)
      if (full) await this.#withdrawStale(new Set(rewrite))
      await this.#claimAddress()
    } catch (err) {
      for (const id of ids) this.#dirty.add(id)
      // A rewrite cut short is done again whole at the next flush.
      if (full) this.#full = true
      throw err
    }
  }

  /**
   * Writes this node's ID under its address and tells of another live node
   * found there. Each node rewrites the key at every heartbeat, so another
   * ID there, written since this node's last write, is a node that is
   * still running and publishes the same address; a node that ran there
   * before a restart wrote it before this one's first write, and is never
   * taken for one. The other ID counts only while its own node key still
   * names this address.
   */
  async #claimAddress (): Promise<void> {
    const { client } = this.#conn
    const { nodeId, address, ttl, commandTimeout } = this.#o
    const holder = await timed(client.set(this.#keys.address(address), nodeId, 'PX', ttl, 'GET'), commandTimeout)
    const claimed = this.#claimed
    this.#claimed = true
    if (!claimed || holder === null || holder === nodeId || this.#o.onClash === undefined) return
    if (await timed(client.get(this.#keys.node(holder)), commandTimeout) === address) this.#o.onClash(holder)
  }

  /**
   * Removes this node's field wherever Redis has one for an ID it holds
   * nothing for (an older count Redis brought back). It walks the parked
   * hashes with SCAN: bounded by the IDs with sockets parked on some node
   * (a hash goes when its last field does), in batches, once per reconnection.
   */
  async #withdrawStale (done: Set<string>): Promise<void> {
    const { client } = this.#conn
    const prefix = this.#keys.parked('')
    const match = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`
    // Redis Cluster: each master holds its own share of the keys.
    const nodes = scanTargets(client)
    for (const node of nodes) {
      let cursor = '0'
      do {
        const [next, keys] = await timed(node.scan(cursor, 'MATCH', match, 'COUNT', 500), this.#o.commandTimeout)
        cursor = next
        const fresh = keys.map(key => key.slice(prefix.length)).filter(id => !done.has(id))
        for (const id of fresh) done.add(id)
        await timed(Promise.all(fresh.map(id => this.#write(id))), this.#o.commandTimeout)
      } while (cursor !== '0' && !this.#stopped)
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
