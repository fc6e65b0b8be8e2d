// STUB, not the real agent: created by the serve/main engineer only so that lib/cli/main.ts compiles.
// The agent engineer replaces this whole file with the real runAgent.
import { CliError, type CliIo } from './cli-error'

export async function runAgent (_args: string[], _io: CliIo): Promise<number> {
  throw new CliError('agent is not available in this build yet', 1)
}
