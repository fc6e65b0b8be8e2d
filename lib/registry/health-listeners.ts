/**
 * Registry.onHealth's listeners: told when reading starts to fail (with the
 * error) and when it succeeds again (undefined), once each, however often it
 * is read meanwhile.
 */
export class HealthListeners {
  readonly #listeners = new Set<(error: Error | undefined) => void>()
  #failing = false

  add (listener: (error: Error | undefined) => void): () => void {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }

  /** The outcome of one read: an error, or undefined for a success. */
  report (error: Error | undefined): void {
    if (this.#failing === (error !== undefined)) return
    this.#failing = error !== undefined
    for (const listener of this.#listeners) listener(error)
  }
}
