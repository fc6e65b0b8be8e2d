import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { buildProblem, runCli } from '../helpers/cli'

// A replay journal serve cannot read stops the start with one line naming it, not an unexpected error.

const problem = buildProblem(t)
if (problem !== undefined) {
  t.fail(problem)
} else {
  t.test('a journal that is a directory: serve exits 1 naming it', async t => {
    const root = mkdtempSync(join(tmpdir(), 'rv-serve-journal-damaged-'))
    t.teardown(() => rmSync(root, { recursive: true, force: true }))
    const dataDir = join(root, 'data')
    const added = await runCli(t, ['ids', 'add', '--data-dir', dataDir, '--json'])
    t.equal(added.code, 0, added.stderr)
    // A pid no process has: Linux pids stay below 2^22.
    const journal = join(dataDir, 'replay.4194999.0badf00d.journal')
    mkdirSync(journal, { mode: 0o700 })
    const res = await runCli(t, ['serve', '--port', '0', '--no-tls', '--data-dir', dataDir])
    t.equal(res.code, 1)
    t.equal(res.stderr, `rendezvous: The replay journal ${journal}: is not a regular file; move it out of the data dir\n`)
    t.notMatch(res.stdout, /listening on/, 'never listened')
  })
}
