import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type t from 'tap'
import type { CliResult } from './cli'

type Test = Parameters<Parameters<typeof t.test>[0]>[0]

/** A data dir for one test, removed at its teardown. */
export function tempDir (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'rendezvous-serve-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** serve refused to start with one line on stderr matching `pattern`, no stack trace, and never listened. */
export function assertOneLineError (t: Test, res: CliResult, pattern: RegExp): void {
  t.not(res.code, 0, 'exits non-zero')
  t.not(res.code, null, 'exits rather than being killed')
  const lines = res.stderr.split('\n').filter(line => line !== '')
  t.equal(lines.length, 1, `one line on stderr, got: ${res.stderr}`)
  t.match(lines[0] ?? '', /^rendezvous: /)
  t.match(lines[0] ?? '', pattern)
  t.notMatch(res.stderr, /\n\s+at /, 'no stack trace')
  t.notMatch(res.stdout, /listening on/, 'never listened')
}
