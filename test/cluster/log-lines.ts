import { Writable } from 'node:stream'

export interface LogLine { level: number, msg: string, [field: string]: unknown }

/** A log destination that keeps each JSON line parsed. */
export class LogLines extends Writable {
  readonly lines: LogLine[] = []
  /** The same lines as written, for what parsing hides (a key written twice). */
  readonly raw: string[] = []
  override _write (chunk: Buffer, _encoding: BufferEncoding, done: () => void): void {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line === '') continue
      this.raw.push(line)
      this.lines.push(JSON.parse(line))
    }
    done()
  }

  /** The lines whose message starts with `msg`. */
  find (msg: string): LogLine[] {
    return this.lines.filter(line => line.msg.startsWith(msg))
  }
}
