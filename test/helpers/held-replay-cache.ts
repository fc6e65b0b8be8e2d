import { MemoryReplayCache } from '../../lib/stores/memory-replay-cache'
import type { ReplayCache, ReplayVerdict } from '../../lib/stores/replay-cache'

/** A replay cache that answers only when the test calls one of `held`: a token's check is in progress until then. */
export class HeldCache implements ReplayCache {
  readonly inner = new MemoryReplayCache()
  readonly held: Array<() => void> = []
  async remember (key: string, ttlMs: number): Promise<ReplayVerdict> {
    await new Promise<void>(resolve => this.held.push(resolve))
    return await this.inner.remember(key, ttlMs)
  }
}
