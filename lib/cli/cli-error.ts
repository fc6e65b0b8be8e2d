/** An error the CLI prints as one line, without a stack trace, before it exits non-zero. */
export class CliError extends Error {
  readonly exitCode: number
  constructor (message: string, exitCode = 2) {
    super(message)
    this.name = 'CliError'
    this.exitCode = exitCode
  }
}

export interface CliIo {
  stdout: NodeJS.WritableStream
  stderr: NodeJS.WritableStream
  env: NodeJS.ProcessEnv
}
