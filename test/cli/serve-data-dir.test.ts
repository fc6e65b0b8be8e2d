import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { assertOneLineError, tempDir } from '../helpers/serve-cli'
import { buildProblem, runCli } from '../helpers/cli'

// Without TLS, serve meets the data dir first in the plugin: its error is serve's one line too, in the plugin's words.

const problem = buildProblem(t)
if (problem !== undefined) {
  t.fail(problem)
} else {
  t.test('a --data-dir that cannot be made is one line naming it and why', async t => {
    const dir = tempDir(t)
    const file = join(dir, 'a-file')
    writeFileSync(file, 'x')
    const cases: Array<[string, RegExp]> = [
      [join(file, 'x'), /^rendezvous: The data dir \S+a-file\/x cannot be used: \S+a-file is a file, not a directory$/],
      ['/proc/rendezvous-nonexistent/x', /^rendezvous: The data dir \/proc\/rendezvous-nonexistent\/x cannot be used: cannot create \/proc\/rendezvous-nonexistent: no such file or directory$/]
    ]
    for (const [dataDir, pattern] of cases) {
      const res = await runCli(t, ['serve', '--no-tls', '--port', '0', '--no-metrics', '--data-dir', dataDir])
      assertOneLineError(t, res, pattern)
    }
  })
}
