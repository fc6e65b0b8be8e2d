import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { buildProblem, runCli, startCli } from '../helpers/cli'

/*
 * An ids.json other users can read is used, with a warning. The CLI tells it
 * as it tells its other warnings, one `rendezvous: warning:` line on stderr,
 * not as a Node process warning, which --no-warnings (or NODE_NO_WARNINGS)
 * silences and which comes with a --trace-warnings hint. Once serve listens,
 * it is a log line, as the warnings of a reload are.
 */

type Test = Parameters<Parameters<typeof t.test>[0]>[0]

async function dataDirWithId (t: Test, mode: number): Promise<string> {
  const root = mkdtempSync(join(tmpdir(), 'rendezvous-readable-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  const dir = join(root, 'data')
  const added = await runCli(t, ['ids', 'add', '--data-dir', dir, '--id', 'hub-1'])
  t.equal(added.code, 0, added.stderr)
  chmodSync(join(dir, 'ids.json'), mode)
  return dir
}

const warning = (dir: string): string => `rendezvous: warning: ${join(dir, 'ids.json')}: the file has mode 0644, readable by other users; run chmod 600 on it\n`
// What silenced the process warning entirely.
const quiet = { env: { NODE_OPTIONS: '--no-warnings', NODE_NO_WARNINGS: '1' } }

const problem = buildProblem(t)
if (problem !== undefined) {
  t.fail(problem)
} else {
  t.test('serve: one warning line on stderr, which --no-warnings does not silence', async t => {
    const dir = await dataDirWithId(t, 0o644)
    const serve = startCli(t, ['serve', '--no-tls', '--port', '0', '--data-dir', dir], quiet)
    await serve.waitFor(/listening on/)
    t.equal((await serve.stop('SIGTERM')).code, 0)
    t.equal(serve.stderr(), warning(dir), 'exactly the one line')
  })

  t.test('serve and ids: a secret other tools refuse is one warning line too, which --no-warnings does not silence', async t => {
    const dir = await dataDirWithId(t, 0o600)
    const file = join(dir, 'ids.json')
    const stored = JSON.parse(readFileSync(file, 'utf8'))
    // 33 base32 characters: a length no encoder writes, as an earlier version stored some.
    stored.ids['hub-1'].secret = 'A'.repeat(33)
    writeFileSync(file, JSON.stringify(stored), { mode: 0o600 })
    const odd = `rendezvous: warning: ${file}: the secret of ID hub-1 is kept, but 33 characters is not a possible length of base32 (one lost or added?); rotate it\n`
    const serve = startCli(t, ['serve', '--no-tls', '--port', '0', '--data-dir', dir], quiet)
    await serve.waitFor(/listening on/)
    t.equal((await serve.stop('SIGTERM')).code, 0)
    t.equal(serve.stderr(), odd, 'serve: exactly the one line')
    const listed = await runCli(t, ['ids', 'list', '--data-dir', dir], quiet)
    t.equal(listed.code, 0, listed.stderr)
    t.equal(listed.stderr, odd, 'ids list: exactly the one line')
  })

  t.test('ids: the same line', async t => {
    const dir = await dataDirWithId(t, 0o644)
    for (const args of [['list'], ['add', '--id', 'hub-2']]) {
      const res = await runCli(t, ['ids', ...args, '--data-dir', dir], quiet)
      t.equal(res.code, 0, res.stderr)
      t.equal(res.stderr, warning(dir), `ids ${args[0]}: exactly the one line`)
      chmodSync(join(dir, 'ids.json'), 0o644)
    }
  })

  t.test('serve: an ids.json that becomes readable while serve runs is logged at warn', async t => {
    const dir = await dataDirWithId(t, 0o600)
    const serve = startCli(t, ['serve', '--no-tls', '--port', '0', '--data-dir', dir])
    await serve.waitFor(/listening on/)
    // Its ctime changes, which the registry's poll notices.
    chmodSync(join(dir, 'ids.json'), 0o644)
    const [line] = await serve.waitFor(/\{"level":40,[^\n]*readable by other users[^\n]*\}\n/, 10_000)
    t.match(JSON.parse(line), { level: 40, msg: warning(dir).replace(/^rendezvous: warning: /, '').trimEnd() })
    t.equal((await serve.stop('SIGTERM')).code, 0)
    t.equal(serve.stderr(), '', 'nothing on stderr: neither a process warning nor a second line')
  })
}
