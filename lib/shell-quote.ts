/**
 * `value` as one shell word, quoted only when it must be. Shared by the CLI's
 * printed hints and the admin page's agent command, so a command copied from
 * either pastes the same way. `[` and `]` are quoted because sh globs them.
 */
export function shellQuote (value: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(value) ? value : `'${value.replace(/'/g, "'\\''")}'`
}
