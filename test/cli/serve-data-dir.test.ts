import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { tempDir } from '../helpers/serve-cli'
import { buildProblem, runCli } from '../helpers/cli'

// serve meets the data dir first in the plugin (--no-tls) or in its certificate (TLS), ids add in its registry: one line, in the same words, each way.

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
      for (const args of [['serve', '--no-tls', '--port', '0', '--no-metrics'], ['serve', '--port', '0', '--no-metrics'], ['ids', 'add']]) {
        const res = await runCli(t, [...args, '--data-dir', dataDir])
        t.equal(res.code, 1, `${args.join(' ')}: exit 1`)
        t.match(res.stderr.trim(), pattern, `${args.join(' ')}: ${res.stderr.trim()}`)
        t.notMatch(res.stderr.trim(), /\n/, 'one line')
      }
    }
  })
}
