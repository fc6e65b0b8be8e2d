import t from 'tap'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildProblem, runCli, startCli } from '../helpers/cli'
import { until } from '../helpers/until'

/*
 * --admin-token-file as serve reads it: judged as ids.json is (refused when
 * other users can write it, a warning when they can read it), refused when
 * its token holds what no request can send (a space, €), and read again on
 * SIGHUP with the same checks.
 */

const TOKEN = 'admin-token-file-0123456789'
const NEXT = 'admin-token-next-9876543210'

function tempDir (t: { teardown: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'rendezvous-admin-token-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

function tokenFile (path: string, text: string, mode: number): string {
  writeFileSync(path, text)
  chmodSync(path, mode)
  return path
}

async function status (admin: string, token: string): Promise<number> {
  return (await fetch(`${admin}api/ids`, { headers: { authorization: `Bearer ${token}` } })).status
}

const problem = buildProblem(t)
if (problem !== undefined) {
  t.fail(problem)
} else {
  t.test('a token file others can write, or whose token no request can send, is refused in one line, exit 2', async t => {
    const dir = tempDir(t)
    const cases: Array<[string, number, RegExp]> = [
      [`${TOKEN}\n`, 0o666, /^rendezvous: --admin-token-file \S+: the file has mode 0666, writable by other users; run chmod 600 on it\n$/],
      [`${TOKEN}\n`, 0o620, /^rendezvous: --admin-token-file \S+: the file has mode 0620, writable by other users; run chmod 600 on it\n$/],
      [`${TOKEN}\n`, 0o602, /writable by other users/],
      ['admin-token-€-0123456789\n', 0o600, /^rendezvous: --admin-token-file \S+ must hold a token of 16 characters or more, visible ASCII without spaces, on its first line; the token there has a character other than visible ASCII/],
      ['admin-token-é-0123456789\n', 0o600, /has a character other than visible ASCII/],
      ['abcd efgh ijkl mnop\n', 0o600, /has a character other than visible ASCII/],
      ['short-token\n', 0o600, /must hold a token of 16 characters or more[^\n]*the token there is shorter than 16 characters\n$/]
    ]
    for (const [text, mode, pattern] of cases) {
      const file = tokenFile(join(dir, `token-${mode.toString(8)}`), text, mode)
      const res = await runCli(t, ['serve', '--no-tls', '--port', '0', '--data-dir', join(dir, 'data'), '--admin-listen', '127.0.0.1:0', '--admin-token-file', file])
      t.equal(res.code, 2, `${JSON.stringify(text)} ${mode.toString(8)}: ${res.stderr}`)
      t.match(res.stderr, pattern)
      t.equal(res.stderr.split('\n').filter(Boolean).length, 1, 'one line')
      t.notOk(res.stderr.includes(text.trim()), 'the token is never echoed')
    }
  })

  t.test('a token file others can read is used, with a warning; a private one without', async t => {
    const dir = tempDir(t)
    for (const [mode, warned] of [[0o644, true], [0o640, true], [0o600, false], [0o400, false]] as const) {
      const file = tokenFile(join(dir, `token-${mode.toString(8)}`), `${TOKEN}\n`, mode)
      const serve = startCli(t, ['serve', '--no-tls', '--port', '0', '--data-dir', join(dir, 'data'), '--admin-listen', '127.0.0.1:0', '--admin-token-file', file])
      const [, admin] = await serve.waitFor(/Admin page and API: (http:\/\/127\.0\.0\.1:\d+\/)/)
      t.equal(await status(admin, TOKEN), 200, `mode ${mode.toString(8)}: the token works`)
      t.equal((await serve.stop('SIGTERM')).code, 0)
      const warning = `rendezvous: warning: --admin-token-file ${file}: the file has mode 0${mode.toString(8)}, readable by other users; run chmod 600 on it\n`
      if (warned) t.equal(serve.stderr(), warning, `mode ${mode.toString(8)}: one warning`)
      else t.equal(serve.stderr(), '', `mode ${mode.toString(8)}: no warning`)
      t.notOk(serve.output().includes(TOKEN), 'the token is never printed')
    }
  })

  t.test('SIGHUP rereads the token file: a good new token replaces the old one, a bad one is logged and the current one stays', async t => {
    const dir = tempDir(t)
    const file = tokenFile(join(dir, 'admin-token'), `${TOKEN}\n`, 0o600)
    const serve = startCli(t, ['serve', '--no-tls', '--port', '0', '--data-dir', join(dir, 'data'), '--admin-listen', '127.0.0.1:0', '--admin-token-file', file])
    const [, admin] = await serve.waitFor(/Admin page and API: (http:\/\/127\.0\.0\.1:\d+\/)/)
    t.equal(await status(admin, TOKEN), 200)
    // Each SIGHUP writes one line; wait for the next one, not for one an earlier SIGHUP wrote.
    const lines = (msg: string): string[] => serve.stdout().split('\n').filter(line => line.includes(`"msg":"${msg}`))
    const hangUp = async (msg: string): Promise<string> => {
      const before = lines(msg).length
      serve.child.kill('SIGHUP')
      await until(() => lines(msg).length > before, 10_000, msg)
      return lines(msg)[before]
    }

    await hangUp('admin token unchanged')
    t.equal(await status(admin, TOKEN), 200, 'unchanged')

    tokenFile(file, `${NEXT}\n`, 0o600)
    await hangUp('admin token reloaded')
    t.equal(await status(admin, NEXT), 200, 'the new token is taken')
    t.equal(await status(admin, TOKEN), 401, 'the old one is refused')

    for (const [text, mode, reason] of [[`${TOKEN}\n`, 0o666, /writable by other users/], ['admin-token-€-0123456789\n', 0o600, /visible ASCII/], ['', 0o600, /shorter than 16/]] as const) {
      tokenFile(file, text, mode)
      t.match(await hangUp('admin token reload failed'), reason, `refused: ${reason.source}`)
      t.equal(await status(admin, NEXT), 200, 'the current token stays')
      t.equal(await status(admin, TOKEN), 401)
    }

    tokenFile(file, `${TOKEN}\n`, 0o644)
    await hangUp('admin token reloaded')
    t.equal(await status(admin, TOKEN), 200, 'a readable file is taken, with a warning line')
    t.match(serve.stdout(), /"level":40,[^\n]*readable by other users/)
    t.notMatch(serve.stdout(), /nothing to reload/, 'SIGHUP has something to reload')
    t.equal((await serve.stop('SIGTERM')).code, 0)
    for (const token of [TOKEN, NEXT, 'admin-token-€']) t.notOk(serve.output().includes(token), 'no token in the output')
  })
}
