import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { parseV1Token } from '../tokens/v1'
import { MemoryReplayCache } from '../stores/memory-replay-cache'

// Not the hidden servers' domain: a MAC for one protocol is never valid for the other.
const DOMAIN = 'rendezvous-peer-v1\n'

/**
 * One-time tokens for the link between nodes, in the shape of the `v1`
 * tokens (`v1.SECONDS.NONCE.MAC`), keyed with the cluster secret. The MAC
 * covers the node it is meant for, the ID and a hash of the request head,
 * so a token cannot be replayed to another node or with another request;
 * each node remembers the nonces it accepted for the skew window.
 */
export class PeerTokens {
  readonly #key: Buffer
  readonly #skewSeconds: number
  readonly #seen = new MemoryReplayCache({ maxEntries: 1_000_000 })

  constructor (secret: string, skewSeconds = 30) {
    this.#key = Buffer.from(secret, 'utf8')
    this.#skewSeconds = skewSeconds
  }

  create (target: string, id: string, payload: Buffer, now = Date.now()): string {
    const seconds = String(Math.floor(now / 1000))
    const nonce = randomBytes(16).toString('base64url')
    return `v1.${seconds}.${nonce}.${this.#mac(target, id, payload, seconds, nonce)}`
  }

  /**
   * Why `token` cannot verify, or undefined when it may: malformed, or made
   * outside the skew window. Known from the request line, before its
   * payload is read; a token refused here fails verify() too. The refusal
   * says which way the clock is off: the asking node logs it, and the
   * nodes' clocks are what to fix.
   */
  implausible (token: string, now = Date.now()): string | undefined {
    const parsed = parseV1Token(token)
    if (parsed === undefined) return 'malformed token'
    const skew = parsed.seconds - Math.floor(now / 1000)
    if (skew > this.#skewSeconds) return `token made more than ${this.#skewSeconds} s ahead of this node's clock`
    if (-skew > this.#skewSeconds) return `token made more than ${this.#skewSeconds} s behind this node's clock`
    return undefined
  }

  /** Whether `token` was made for this node (`self`), this ID and this payload, recently, and never seen before. */
  async verify (self: string, id: string, payload: Buffer, token: string, now = Date.now()): Promise<boolean> {
    const parsed = parseV1Token(token)
    if (parsed === undefined) return false
    const expected = Buffer.from(this.#mac(self, id, payload, parsed.secondsText, parsed.nonce))
    if (!timingSafeEqual(expected, Buffer.from(parsed.mac))) return false
    if (Math.abs(Math.floor(now / 1000) - parsed.seconds) > this.#skewSeconds) return false
    const ttl = (parsed.seconds + this.#skewSeconds + 1) * 1000 - now
    return await this.#seen.remember(parsed.nonce, Math.max(1, ttl)) === 'fresh'
  }

  #mac (target: string, id: string, payload: Buffer, seconds: string, nonce: string): string {
    const digest = createHash('sha256').update(payload).digest('hex')
    return createHmac('sha256', this.#key)
      .update(`${DOMAIN}${target}\n${id}\n${seconds}\n${nonce}\n${digest}`)
      .digest('base64url')
  }
}
