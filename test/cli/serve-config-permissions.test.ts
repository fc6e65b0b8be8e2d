import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { buildProblem, runCli, startCli } from '../helpers/cli'
import { redisMissing, startRedis } from '../cluster/redis-server'

/*
 * The config file can set dataDir, adminTokenFile, host, noTls and the
 * cluster secret: it is judged as the admin token file and ids.json are.
 * Other users who can write it could point serve at their own IDs or token,
 * so it is refused; one they can read is warned about only while it holds a
 * secret.
 */

type Test = Parameters<Parameters<typeof t.test>[0]>[0]

const CLUSTER_SECRET = 'cluster-secret-0123456789'

function tempDir (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'rendezvous-config-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

// chmod, not writeFile's mode, which the umask would narrow.
function configFile (dir: string, options: Record<string, unknown>, mode: number, name = 'serve.json'): string {
  const file = join(dir, name)
  writeFileSync(file, JSON.stringify(options))
  chmodSync(file, mode)
  return file
}

const readable = (file: string): string => `rendezvous: warning: --config ${file} holds clusterSecret, but the file has mode 0644, readable by other users; run chmod 600 on it\n`

const problem = buildProblem(t)
if (problem !== undefined) {
  t.fail(problem)
} else {
  t.test('a config file other users can write is refused in one line, exit 2, by serve and by ids', async t => {
    const dir = tempDir(t)
    for (const mode of [0o666, 0o664, 0o646, 0o622]) {
      const file = configFile(dir, { noTls: true, port: 0, dataDir: join(dir, 'data') }, mode)
      const message = `rendezvous: --config ${file}: the file has mode 0${mode.toString(8)}, writable by other users; run chmod 644 on it\n`
      // Bounded: a file let through starts a server that would otherwise run until killed.
      for (const [what, args, env] of [
        ['serve --config', ['serve', '--config', file], {}],
        ['serve with RENDEZVOUS_CONFIG', ['serve'], { RENDEZVOUS_CONFIG: file }],
        ['ids list --config', ['ids', 'list', '--config', file], {}]
      ] as const) {
        const res = await runCli(t, [...args], { env, timeoutMs: 5000 })
        t.equal(res.code, 2, `${mode.toString(8)} ${what}: exit 2 (${res.signal ?? ''} ${res.stderr})`)
        t.equal(res.stderr, message, `${mode.toString(8)} ${what}: one line`)
        t.equal(res.stdout, '', 'nothing on stdout')
      }
    }
  })

  t.test('its mode is judged before its content', async t => {
    const file = configFile(tempDir(t), {}, 0o666)
    writeFileSync(file, '{ nope')
    const res = await runCli(t, ['serve', '--config', file], { timeoutMs: 5000 })
    t.equal(res.code, 2)
    t.match(res.stderr, /writable by other users/)
  })

  t.test('a config file without a secret may be read by anyone', async t => {
    const dir = tempDir(t)
    const file = configFile(dir, { noTls: true, port: 0, dataDir: join(dir, 'data') }, 0o644)
    const serve = startCli(t, ['serve', '--config', file])
    await serve.waitFor(/listening on/)
    t.equal((await serve.stop('SIGTERM')).code, 0)
    t.equal(serve.stderr(), '', 'no warning')
  })

  t.test('a config file others can read that holds clusterSecret is used, with one warning line', { skip: redisMissing() ?? false }, async t => {
    const redis = await startRedis(t)
    const dir = tempDir(t)
    const options = { noTls: true, port: 0, dataDir: join(dir, 'data'), redis: redis.url, clusterSecret: CLUSTER_SECRET, peerPort: 0 }
    for (const [mode, warned] of [[0o644, true], [0o600, false]] as const) {
      const file = configFile(dir, options, mode, `serve-${mode.toString(8)}.json`)
      const serve = startCli(t, ['serve', '--config', file, '--log-level', 'warn'])
      await serve.waitFor(/listening on/)
      t.equal((await serve.stop('SIGTERM')).code, 0)
      t.equal(serve.stderr(), warned ? readable(file) : '', `${mode.toString(8)}: serve`)
      t.notOk(serve.output().includes(CLUSTER_SECRET), 'the secret is never printed')
      const listed = await runCli(t, ['ids', 'list', '--json', '--config', file])
      t.equal(listed.code, 0, listed.stderr)
      t.equal(listed.stdout, '[]\n', "the cluster's IDs, through the file's redis")
      t.equal(listed.stderr, warned ? readable(file) : '', `${mode.toString(8)}: ids list`)
    }
  })
}
