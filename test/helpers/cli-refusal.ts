import { CliError } from '../../lib/cli/cli-error'
import { resolveConfig } from '../../lib/cli/config'
import { SERVE_TABLE } from '../../lib/cli/serve-table'

/** serve's options as its table resolves them from `args` and `env`, in process. */
export const resolveServe = (args: string[], env: NodeJS.ProcessEnv = {}): ReturnType<typeof resolveConfig<typeof SERVE_TABLE>> =>
  resolveConfig('serve', SERVE_TABLE, { args, env })

/** The message of the CliError that `fn` throws; anything else is rethrown, and no throw fails. */
export function refusal (fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    if (err instanceof CliError) return err.message
    throw err
  }
  throw new Error('not refused')
}
