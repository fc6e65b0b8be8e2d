import { LOG_LEVELS, type LogLevel } from '../server/serve-options'
import { CliError } from './cli-error'

/** Checks of flag values shared by the commands; each problem is a one-line CliError (exit 2). */

export function port (value: string, flag = '--port'): number {
  const n = Number(value)
  if (!/^\d+$/.test(value) || n > 65535) throw new CliError(`${flag} must be an integer from 0 to 65535, got ${JSON.stringify(value)}`)
  return n
}

export function nonEmpty (value: string | undefined, flag: string): string | undefined {
  if (value !== undefined && value.trim() === '') throw new CliError(`${flag} must not be empty`)
  return value
}

export function logLevel (value: string): LogLevel {
  if (!(LOG_LEVELS as readonly string[]).includes(value)) {
    throw new CliError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(value)}`)
  }
  return value as LogLevel
}
