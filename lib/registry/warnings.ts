/** Where a registry warning goes instead of a process warning. */
export type RegistryWarningSink = (message: string) => void

let sink: RegistryWarningSink | undefined

/**
 * Tells the operator of something in the registry's files that works but
 * should be fixed (a file others can read, a secret other tools refuse). An
 * application that embeds the plugin hears of it as a process warning, as of
 * any other; the CLI takes them with reportRegistryWarnings.
 */
export function registryWarning (message: string, code: string): void {
  if (sink === undefined) process.emitWarning(message, { code })
  else sink(message)
}

/**
 * Sends registry warnings to `to` until the returned function puts back
 * where they went before: the CLI prints them as its own lines, which
 * --no-warnings does not silence, and logs them once serve listens.
 */
export function reportRegistryWarnings (to: RegistryWarningSink): () => void {
  const before = sink
  sink = to
  return () => { sink = before }
}
