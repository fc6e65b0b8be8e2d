import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { buildProblem, runCli, startCli, type CliResult } from '../helpers/cli'

// serve and ids judge the data dir as OpenSSH's StrictModes judge ~/.ssh:
// whoever can write the dir, or the tls dir in it, can swap the certificate
// and key that agents pin, or plant an ids.json; whoever can read the key can
// impersonate the relay. Refused, whether or not ids.json exists yet.

type Test = Parameters<Parameters<typeof t.test>[0]>[0]

function dataDir (t: Test, mode: number): string {
  const root = mkdtempSync(join(tmpdir(), 'rv-serve-perm-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  const dir = join(root, 'data')
  mkdirSync(dir)
  chmodSync(dir, mode)
  return dir
}

function refused (t: Test, res: CliResult, path: string, fix: RegExp): void {
  t.equal(res.code, 1, `exit 1: ${res.stderr}`)
  t.equal(res.stderr, res.stderr.split('\n')[0] + '\n', 'one line')
  t.match(res.stderr, `rendezvous: Refusing to use ${path}: `)
  t.match(res.stderr, fix)
  t.notMatch(res.stdout, /listening on/, 'never listened')
}

// A first start that makes the pair, so that the tls dir and key exist to loosen.
async function firstStart (t: Test, dir: string): Promise<void> {
  const proc = startCli(t, ['serve', '--port', '0', '--host', '127.0.0.1', '--data-dir', dir])
  await proc.waitFor(/listening on/)
  await proc.stop('SIGTERM')
}

const problem = buildProblem(t)
if (problem !== undefined) {
  t.fail(problem)
} else {
  t.test('a fresh data dir that other users can write is refused before anything is written to it', async t => {
    for (const mode of [0o777, 0o775, 0o1777]) {
      const dir = dataDir(t, mode)
      refused(t, await runCli(t, ['serve', '--port', '0', '--host', '127.0.0.1', '--data-dir', dir]), dir, /writable by other users; run chmod 700 on it/)
      t.notOk(existsSync(join(dir, 'tls')), `${mode.toString(8)}: no key generated in it`)
      refused(t, await runCli(t, ['ids', 'list', '--data-dir', dir]), dir, /chmod 700/)
    }
  })

  t.test('the tls dir and the key serve generated are judged too', async t => {
    const dir = dataDir(t, 0o700)
    await firstStart(t, dir)
    const tls = join(dir, 'tls')
    const key = join(tls, 'key.pem')
    const cert = join(tls, 'cert.pem')
    const serve = ['serve', '--port', '0', '--host', '127.0.0.1', '--data-dir', dir]

    chmodSync(tls, 0o777)
    refused(t, await runCli(t, serve), tls, /writable by other users; run chmod 700 on it/)
    chmodSync(tls, 0o700)
    chmodSync(cert, 0o666)
    // A certificate is public: the fix takes others' write bit, not their read bit.
    refused(t, await runCli(t, serve), cert, /writable by other users; run chmod 644 on it/)
    chmodSync(cert, 0o644)
    for (const mode of [0o644, 0o640, 0o604]) {
      chmodSync(key, mode)
      refused(t, await runCli(t, serve), key, /readable by other users; run chmod 600 on it/)
    }
    chmodSync(key, 0o600)
    // With the modes restored, the same pair serves again.
    await firstStart(t, dir)
  })
}
