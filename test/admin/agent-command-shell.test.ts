import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { ROOT, buildProblem, spawnProc, startCli } from '../helpers/cli'
import { until } from '../helpers/until'

/*
 * The agent command the admin API gives is pasted into a shell, in another
 * directory (or on another machine). It had a --ca relative to serve's
 * working directory, an unquoted ID (`~root` is the home of root to sh, and
 * `--id -x1` is refused by the parser) and `rendezvous` where serve was
 * started as `node dist/cli/main.js`. Here it is run exactly as given, by
 * sh, from another directory, and must park.
 */

const TOKEN = 'serve-admin-token-0123456789'

function tempDir (t: { teardown: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'rendezvous-agentcmd-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

const problem = buildProblem(t)
if (problem !== undefined) {
  t.fail(problem)
} else {
  t.test('the agent command runs as given, by sh, from another directory', async t => {
    // A relative --data-dir, so that serve's certificate path is relative to its working directory.
    const dataDir = relative(ROOT, join(tempDir(t), 'data'))
    const elsewhere = tempDir(t)
    const tokenFile = join(elsewhere, 'admin-token')
    writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 })
    const serve = startCli(t, ['serve', '--port', '0', '--host', '127.0.0.1', '--data-dir', dataDir, '--admin-listen', '127.0.0.1:0', '--admin-token-file', tokenFile])
    await serve.waitFor(/listening on https:\/\/127\.0\.0\.1:\d+\//)
    const [, admin] = await serve.waitFor(/Admin page and API: (http:\/\/127\.0\.0\.1:\d+\/)/)
    const hidden = createServer(socket => socket.end()).listen(0, '127.0.0.1')
    t.teardown(() => hidden.close())
    await new Promise(resolve => hidden.once('listening', resolve))
    const hiddenPort = (hidden.address() as AddressInfo).port

    for (const id of ['-x1', '~root']) {
      const res = await fetch(`${admin}api/ids`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ id }) })
      t.equal(res.status, 201, `added ${id}`)
      const { agentCommand } = await res.json() as { agentCommand: string }
      t.match(agentCommand, /^node \/\S+\/dist\/cli\/main\.js agent /, 'the CLI serve was started as, by an absolute path')
      t.match(agentCommand, / --ca \/\S+\/data\/tls\/cert\.pem$/, 'an absolute --ca')
      const agent = spawnProc(t, `agent ${id}`, '/bin/sh', ['-c', `exec ${agentCommand.replace('PORT', String(hiddenPort))}`], { cwd: elsewhere })
      await until(async () => {
        const list = await (await fetch(`${admin}api/ids`, { headers: { authorization: `Bearer ${TOKEN}` } })).json() as { ids: Array<{ id: string, parked: number }> }
        return (list.ids.find(r => r.id === id)?.parked ?? 0) >= 1
      }, 10_000, `${id} to park`).catch(err => { throw new Error(`${String(err)}\n${agent.output()}`) })
      t.pass(`${id}: the agent parked`)
      await agent.kill()
    }
  })
}
