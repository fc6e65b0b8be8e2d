import { chmodSync } from 'node:fs'
import { readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { TOTP, URI } from 'otpauth'
import t from 'tap'
import { runIds } from '../../lib/cli/ids'
import { decodeSecret } from '../../lib/registry/ids'
import { FileRegistry } from '../../lib/registry/file-registry'
import { SECRET } from '../helpers/fixtures'
import { buildProblem, runCli } from '../helpers/cli'

interface Run { code: number, stdout: string, stderr: string }

async function ids (...args: string[]): Promise<Run> {
  return await idsWith({}, ...args)
}

async function idsWith (env: NodeJS.ProcessEnv, ...args: string[]): Promise<Run> {
  let stdout = ''
  let stderr = ''
  const sink = (append: (s: string) => void): Writable => new Writable({
    write (chunk, _encoding, callback) { append(String(chunk)); callback() }
  })
  const code = await runIds(args, {
    stdout: sink((s) => { stdout += s }),
    stderr: sink((s) => { stderr += s }),
    env
  })
  return { code, stdout, stderr }
}

function assertOneLineError (t: tap.Test, run: Run, code: number, message?: RegExp): void {
  t.equal(run.code, code, 'exit code')
  t.equal(run.stdout, '', 'nothing on stdout')
  t.match(run.stderr, /^rendezvous: [^\n]+\n$/, 'one line on stderr')
  t.notMatch(run.stderr, /\n\s+at /, 'no stack trace')
  if (message !== undefined) t.match(run.stderr, message)
}

t.test('add --json prints one object with id, secret, otpauth and createdAt', async (t) => {
  const dir = t.testdir()
  const run = await ids('add', '--data-dir', dir, '--json')
  t.equal(run.code, 0)
  t.equal(run.stderr, '')
  t.match(run.stdout, /^\{[^\n]*\}\n$/, 'exactly one line')
  const out = JSON.parse(run.stdout)
  t.same(Object.keys(out), ['id', 'secret', 'otpauth', 'createdAt'])
  t.match(out.id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)
  t.match(out.secret, /^[A-Z2-7]+$/)
  t.ok(decodeSecret(out.secret).length >= 20, 'at least 20 bytes')
  t.ok(out.otpauth.startsWith('otpauth://totp/'))
  t.ok(out.otpauth.includes(`secret=${out.secret}`))
  t.equal(new Date(out.createdAt).toISOString(), out.createdAt)

  const totp = URI.parse(out.otpauth)
  t.ok(totp instanceof TOTP)
  t.match(totp, { issuer: 'rendezvous', label: out.id, algorithm: 'SHA1', digits: 6, period: 30 })
  t.equal((totp as TOTP).secret.base32, out.secret)

  // What the CLI printed is what a running server will read.
  const registry = new FileRegistry({ dataDir: dir })
  await registry.ready()
  t.equal(registry.get(out.id)?.secret, out.secret)
  await registry.close()
})

t.test('add takes --id (canonicalised) and --secret (normalised)', async (t) => {
  const dir = t.testdir()
  const spaced = SECRET.toLowerCase().replace(/(.{4})/g, '$1 ').trim() + '===='
  const run = await ids('add', '--data-dir', dir, '--id', 'My.Host', '--secret', spaced, '--json')
  t.equal(run.code, 0, run.stderr)
  const out = JSON.parse(run.stdout)
  t.equal(out.id, 'my.host')
  t.equal(out.secret, SECRET)
  t.equal((await stat(join(dir, 'ids.json'))).mode & 0o777, 0o600)
})

// 36 characters hold 22 bytes and 4 bits that belong to none: the P (01111) at the end sets them, A (00000) is the
// same key with them zeroed, as the otpauth URI and authenticator apps write it.
t.test('the built bin: add --secret stores and prints the canonical encoding of the bytes, the same as in the otpauth URI', { skip: buildProblem(t) }, async (t) => {
  const dir = t.testdir()
  const given = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXPJBSP'
  const canonical = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXPJBSA'
  const json = await runCli(t, ['ids', 'add', '--data-dir', dir, '--id', 'c36', '--json', '--secret', given])
  t.equal(json.code, 0, json.stderr)
  const out = JSON.parse(json.stdout)
  t.equal(out.secret, canonical)
  t.equal(new URL(out.otpauth).searchParams.get('secret'), canonical, 'the URI holds the same secret')
  const typed = await runCli(t, ['ids', 'add', '--data-dir', dir, '--id', 'c36-typed', '--secret', given.toLowerCase().replace(/(.{4})/g, '$1 ') + '===='])
  t.equal(typed.code, 0, typed.stderr)
  t.match(typed.stdout, new RegExp(`Secret:\\s+${canonical}\\n`))
  t.match(typed.stdout, new RegExp(`otpauth://totp/[^\\s]*secret=${canonical}`))
  t.ok(typed.stdout.includes(` --secret ${canonical} `), 'and so does the agent command line')
  const stored = JSON.parse(await readFile(join(dir, 'ids.json'), 'utf8'))
  t.equal(stored.ids.c36.secret, canonical, 'ids.json holds it')
  t.equal(stored.ids['c36-typed'].secret, canonical)
  const listed = await runCli(t, ['ids', 'list', '--data-dir', dir, '--json', '--show-secret'])
  t.same(JSON.parse(listed.stdout).map((r: { secret: string }) => r.secret), [canonical, canonical])
})

t.test('add without --json prints a readable block with the agent command line', async (t) => {
  const dir = t.testdir()
  const run = await ids('add', '--data-dir', dir, '--id', 'box', '--secret', SECRET)
  t.equal(run.code, 0)
  t.match(run.stdout, /ID:\s+box\n/)
  t.match(run.stdout, new RegExp(`Secret:\\s+${SECRET}\\n`))
  t.match(run.stdout, new RegExp(`otpauth://totp/[^\\s]*secret=${SECRET}`))
  t.ok(run.stdout.includes(` agent --server https://HOST:8443 --id=box --secret ${SECRET} --to http://127.0.0.1:PORT`))
  t.match(run.stdout, /not shown again/)
})

t.test('add refuses a taken ID', async (t) => {
  const dir = t.testdir()
  t.equal((await ids('add', '--data-dir', dir, '--id', 'taken')).code, 0)
  assertOneLineError(t, await ids('add', '--data-dir', dir, '--id', 'TAKEN'), 1, /already provisioned/)
})

t.test('list shows IDs with createdAt, and secrets only with --show-secret', async (t) => {
  const dir = t.testdir()
  const a = JSON.parse((await ids('add', '--data-dir', dir, '--id', 'alpha', '--json')).stdout)
  const b = JSON.parse((await ids('add', '--data-dir', dir, '--id', 'b', '--json')).stdout)

  const text = await ids('list', '--data-dir', dir)
  t.equal(text.code, 0)
  const lines = text.stdout.trimEnd().split('\n')
  t.equal(lines.length, 2)
  t.match(lines[0], new RegExp(`^alpha\\s+${a.createdAt}$`))
  t.match(lines[1], new RegExp(`^b\\s+${b.createdAt}$`))
  t.notMatch(text.stdout, a.secret)

  const shown = await ids('list', '--data-dir', dir, '--show-secret')
  t.match(shown.stdout, a.secret)
  t.match(shown.stdout, b.secret)

  const json = await ids('list', '--data-dir', dir, '--json')
  t.same(JSON.parse(json.stdout), [{ id: 'alpha', createdAt: a.createdAt }, { id: 'b', createdAt: b.createdAt }])
  const jsonSecret = await ids('list', '--data-dir', dir, '--json', '--show-secret')
  t.same(JSON.parse(jsonSecret.stdout), [
    { id: 'alpha', secret: a.secret, createdAt: a.createdAt },
    { id: 'b', secret: b.secret, createdAt: b.createdAt }
  ])
})

t.test('list and remove of a missing data dir: one line, exit 2, nothing created', async (t) => {
  const dir = join(t.testdir(), 'nothing-here')
  for (const args of [['list'], ['list', '--json'], ['remove', 'hub-1']]) {
    assertOneLineError(t, await ids(...args, '--data-dir', dir), 2, new RegExp(`^rendezvous: no data dir at ${dir}: check --data-dir`))
  }
  await t.rejects(stat(dir), { code: 'ENOENT' })
})

t.test('list of an empty data dir says so on stderr; stdout stays empty, --json prints []', async (t) => {
  const dir = t.testdir()
  t.same(await ids('list', '--data-dir', dir), { code: 0, stdout: '', stderr: `no IDs in ${dir}\n` })
  t.same(await ids('list', '--data-dir', dir, '--json'), { code: 0, stdout: '[]\n', stderr: '' })
  await ids('add', '--data-dir', dir, '--id', 'gone')
  await ids('remove', 'gone', '--data-dir', dir)
  t.same(await ids('list', '--data-dir', dir), { code: 0, stdout: '', stderr: `no IDs in ${dir}\n` }, 'once all are removed too')
})

t.test('the built bin: a missing data dir exits 2, an empty one 0', { skip: buildProblem(t) }, async (t) => {
  const dir = t.testdir()
  const missing = await runCli(t, ['ids', 'list', '--data-dir', join(dir, 'typo')])
  t.equal(missing.code, 2)
  t.equal(missing.stdout, '')
  t.match(missing.stderr, /^rendezvous: no data dir at [^\n]*typo: check --data-dir[^\n]*\n$/)
  const empty = await runCli(t, ['ids', 'list', '--data-dir', dir])
  t.same([empty.code, empty.stdout, empty.stderr], [0, '', `no IDs in ${dir}\n`])
})

t.test('remove deletes an ID, and fails clearly when it is not there', async (t) => {
  const dir = t.testdir()
  await ids('add', '--data-dir', dir, '--id', 'keep')
  await ids('add', '--data-dir', dir, '--id', 'drop')
  const run = await ids('remove', 'DROP', '--data-dir', dir)
  t.equal(run.code, 0)
  t.equal(run.stderr, '')
  t.same(JSON.parse((await ids('list', '--data-dir', dir, '--json')).stdout).map((r: { id: string }) => r.id), ['keep'])
  assertOneLineError(t, await ids('remove', 'drop', '--data-dir', dir), 1, /no such ID: drop/)
  assertOneLineError(t, await ids('remove', 'never', '--data-dir', dir), 1, /no such ID: never/)
})

t.test('remove of an invalid ID is a usage error, exit 2, as add of one is', async (t) => {
  const dir = t.testdir()
  await ids('add', '--data-dir', dir, '--id', 'keep')
  for (const id of ['a b', 'x'.repeat(129), '', 'é', 'a/b']) {
    const what = JSON.stringify(id.slice(0, 20))
    assertOneLineError(t, await ids('remove', id, '--data-dir', dir), 2, /Invalid ID .*: use 1 to 128 characters of \[A-Za-z0-9\._~-\]/)
    assertOneLineError(t, await ids('add', '--id', id, '--data-dir', dir), 2)
    assertOneLineError(t, await ids('remove', id, '--data-dir', join(dir, 'missing')), 2, /Invalid ID/)
    t.comment(`refused ${what}`)
  }
  t.equal((await ids('remove', 'x'.repeat(128), '--data-dir', dir)).code, 1, '128 characters is an ID, just not one that is there')
  t.same(JSON.parse((await ids('list', '--data-dir', dir, '--json')).stdout).map((r: { id: string }) => r.id), ['keep'])
})

t.test('the default data dir is .rendezvous in the working directory', async (t) => {
  const dir = t.testdir()
  const cwd = process.cwd()
  process.chdir(dir)
  t.teardown(() => { process.chdir(cwd) })
  const out = JSON.parse((await ids('add', '--json')).stdout)
  const onDisk = JSON.parse(await readFile(join(dir, '.rendezvous', 'ids.json'), 'utf8'))
  t.same(Object.keys(onDisk.ids), [out.id])
  t.equal((await stat(join(dir, '.rendezvous'))).mode & 0o777, 0o700)
})

t.test('without --data-dir, ids uses the registry serve would: RENDEZVOUS_DATA_DIR, then the config file, flags first', async (t) => {
  const dir = t.testdir({ 'serve.json': JSON.stringify({ dataDir: 'from-file', port: 9443 }) })
  const cwd = process.cwd()
  process.chdir(dir)
  t.teardown(() => { process.chdir(cwd) })
  const fromEnv = JSON.parse((await idsWith({ RENDEZVOUS_DATA_DIR: join(dir, 'from-env') }, 'add', '--json', '--id', 'by-env')).stdout)
  t.equal(fromEnv.id, 'by-env')
  t.same(Object.keys(JSON.parse(await readFile(join(dir, 'from-env', 'ids.json'), 'utf8')).ids), ['by-env'], 'RENDEZVOUS_DATA_DIR')
  await idsWith({ RENDEZVOUS_CONFIG: join(dir, 'serve.json') }, 'add', '--id', 'by-file')
  t.same(Object.keys(JSON.parse(await readFile(join(dir, 'from-file', 'ids.json'), 'utf8')).ids), ['by-file'], "the config file's dataDir")
  const listed = await idsWith({}, 'list', '--json', '--config', join(dir, 'serve.json'))
  t.same(JSON.parse(listed.stdout).map((r: { id: string }) => r.id), ['by-file'], '--config names the same file')
  const flagWins = await idsWith({ RENDEZVOUS_DATA_DIR: join(dir, 'from-env') }, 'list', '--json', '--data-dir', join(dir, 'from-file'))
  t.same(JSON.parse(flagWins.stdout).map((r: { id: string }) => r.id), ['by-file'], '--data-dir wins over the environment')
  const badRedis = await idsWith({ RENDEZVOUS_REDIS: 'localhost:6379' }, 'list')
  assertOneLineError(t, badRedis, 2, /^rendezvous: RENDEZVOUS_REDIS must be a redis:\/\/ or rediss:\/\/ URL, got "localhost:6379"$/m)
})

t.test('usage errors exit 2 with one line and no stack trace', async (t) => {
  // In an empty working directory, so that a wrongly accepted command would leave a trace.
  const dir = t.testdir()
  const cwd = process.cwd()
  process.chdir(dir)
  t.teardown(() => { process.chdir(cwd) })
  const cases: Array<[string[], RegExp]> = [
    [[], /subcommand/],
    [['frob'], /unknown ids subcommand "frob"/],
    [['add', '--bogus'], /unknown option --bogus for ids add/],
    [['add', '--data-dir'], /--data-dir/],
    [['add', '--data-dir', '--id', 'x'], /--data-dir needs a value/],
    [['add', '--id'], /--id/],
    [['add', '--json=yes'], /--json/],
    [['add', 'extra'], /takes no argument/],
    [['add', '--data-dir', ''], /--data-dir needs a directory/],
    [['add', '--id', 'no/slash'], /Invalid ID/],
    [['add', '--id', 'x'.repeat(129)], /Invalid ID/],
    [['add', '--secret', 'TOOSHORT'], /Invalid secret/],
    [['list', '--show-secrets'], /unknown option --show-secrets/],
    [['list', 'extra'], /takes no argument/],
    [['remove'], /needs the ID/],
    [['remove', 'a', 'b'], /takes one ID/],
    [['remove', 'a', '--json'], /unknown option --json for ids remove/]
  ]
  for (const [args, message] of cases) {
    t.test(args.join(' ') || '(nothing)', async (t) => {
      assertOneLineError(t, await ids(...args), 2, message)
    })
  }
  t.test('nothing was written', async (t) => {
    t.same(await readdir(dir), [])
  })
})

t.test('--redis with --data-dir is refused: the IDs live in one place', async (t) => {
  const dir = t.testdir()
  for (const args of [['add', '--json'], ['list'], ['remove', 'x']]) {
    assertOneLineError(t, await ids(...args, '--redis', 'redis://127.0.0.1:6379', '--data-dir', dir), 2,
      /^rendezvous: --redis and --data-dir cannot be combined: the IDs live in one place\n$/)
  }
  t.same(await readdir(dir), [])
})

t.test('a corrupt registry is a one-line error that does not show secrets', async (t) => {
  const dir = t.testdir({ 'ids.json': `{"version":1,"ids":{"a":{"secret":${SECRET}}}}` })
  // Private, as ids writes it: a readable one would add its warning line before the error.
  chmodSync(join(dir, 'ids.json'), 0o600)
  for (const args of [['list'], ['add'], ['remove', 'a']]) {
    const run = await ids(...args, '--data-dir', dir)
    assertOneLineError(t, run, 1, /cannot be read/)
    t.notMatch(run.stderr, SECRET.slice(0, 8))
  }
  t.equal(await readFile(join(dir, 'ids.json'), 'utf8'), `{"version":1,"ids":{"a":{"secret":${SECRET}}}}`)
})

t.test('help prints the usage on stdout', async (t) => {
  for (const args of [['help'], ['--help'], ['add', '--help'], ['list', '-h']]) {
    const run = await ids(...args)
    t.equal(run.code, 0)
    t.match(run.stdout, /^usage: rendezvous ids add/)
  }
})

t.test('add under /proc, where nothing can be created, fails at once with one line', async (t) => {
  // Node 20's recursive mkdir spins forever there; this would time out.
  const started = Date.now()
  const run = await ids('add', '--data-dir', '/proc/rendezvous-cannot-exist/x')
  assertOneLineError(t, run, 1, /ENOENT|no such file/)
  t.ok(Date.now() - started < 5000, 'quickly')
})

t.test('the agent command ids add prints pastes into a shell, whatever the ID', async (t) => {
  for (const [id, written] of [['-x1', '--id=-x1'], ['~root', "--id='~root'"]]) {
    const run = await ids('add', '--data-dir', t.testdir(), `--id=${id!}`, '--secret', SECRET)
    t.equal(run.code, 0, run.stderr)
    t.ok(run.stdout.includes(` agent --server https://HOST:8443 ${written!} --secret ${SECRET} `), `${id!}: written ${written!}, so that a leading - is a value and the shell expands nothing`)
  }
})
