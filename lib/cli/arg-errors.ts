import { CliError } from './cli-error'
import { firstLine } from './report'

/**
 * The one parse-error policy of every command. Node's messages advise on '--'
 * quoting and run to several sentences; users need the flag and what went wrong.
 */
export function argsError (err: unknown, command: string): CliError {
  const { message, code } = err as Error & { code?: string }
  const quoted = /'([^']*)'/.exec(message)?.[1] ?? ''
  switch (code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return new CliError(`unknown option ${quoted} for ${command} (see rendezvous ${command} --help)`)
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return new CliError(`unexpected argument ${quoted} for ${command} (see rendezvous ${command} --help)`)
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE': {
      // Node names a flag with a short alias '-h, --help', and one with a value '--id <value>'.
      const flag = /--[\w-]+/.exec(quoted)?.[0] ?? quoted
      if (/does not take/.test(message)) return new CliError(`${flag} does not take a value`)
      if (/ambiguous/.test(message)) return new CliError(`${flag} needs a value (write ${flag}=VALUE for one that starts with a dash)`)
      return new CliError(`${flag} needs a value`)
    }
    default:
      return new CliError(firstLine(message))
  }
}
