// A node that failed is passed over for this long while another one is there.
const AVOID_MS = 10_000

/**
 * Which rendezvous node the next connection goes to: the nodes in turn, so
 * the pool spreads over them, passing over one that failed lately while
 * another is fine.
 */
export class NodePicker {
  readonly #urls: URL[]
  readonly #failedAt = new Map<string, number>()
  #turn = 0

  constructor (urls: URL[]) {
    this.#urls = urls
  }

  pick (): URL {
    const urls = this.#urls
    for (let i = 0; i < urls.length; i++) {
      const url = urls[this.#turn++ % urls.length]
      if (Date.now() - (this.#failedAt.get(url.href) ?? -Infinity) > AVOID_MS) return url
    }
    return urls[this.#turn++ % urls.length]
  }

  failed (url: URL): void {
    this.#failedAt.set(url.href, Date.now())
  }
}
