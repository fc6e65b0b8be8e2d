import { ReplayJournalError } from '../errors'
import type { FoundJournal } from './replay-journal'

/** The token window a cache was given, in ms: 0 when none. */
export function windowOf (opts: { windowMs?: number }): number {
  const windowMs = opts.windowMs ?? 0
  if (!Number.isFinite(windowMs) || windowMs < 0) throw new RangeError('windowMs must be a non-negative number')
  return windowMs
}

/**
 * The latest expiry of each key still inside its window, from every journal.
 * Gathered in a Map before the cache gets them: a journal with millions of
 * lines (one damaged, or written beside a far larger replayCacheSize) holds
 * mostly repeats and expired lines, and an await per line took seconds.
 */
export function liveEntries (journals: FoundJournal[], windowMs: number, now: number, room: number): Map<string, number> {
  const live = new Map<string, number>()
  for (const journal of journals) {
    // Never shortened: a TOTP code's entry does not depend on the window, and keeping an entry longer is safe.
    const extendMs = Math.max(0, windowMs - journal.windowMs)
    for (const { key, at } of journal.entries) {
      const until = at + extendMs
      if (until <= now || (live.get(key) ?? 0) >= until) continue
      live.set(key, until)
      if (live.size > room) {
        throw new ReplayJournalError(journal.path, `holds more live entries than the replay cache has room for (${room}); raise replayCacheSize, or start again once they expire`)
      }
    }
  }
  return live
}
