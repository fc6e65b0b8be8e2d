import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { cp, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { ROOT, run, spawnProc, type RunResult } from '../helpers/cli'
import { SECRET } from '../helpers/fixtures'

// What a stranger gets: `npm pack` on a tree with no dist/ (prepack builds it),
// the tarball installed into a fresh app next to fastify and
// @fastify/under-pressure, the plugin registered there beside an app route,
// the agent from the package parking a hidden server, and curl relayed to it.

const HUB = { HUB_ID: 'embedded-hub', HUB_SECRET: SECRET }
// What the source tree needs to build and pack; test/ goes along to prove it stays out.
const SOURCES = ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'README.md', 'SECURITY.md', 'LICENSE', 'docs', 'lib', 'native', 'scripts', 'test/package']

const probe = spawnSync('curl', ['--version'])
if (probe.error !== undefined || probe.status !== 0) {
  t.plan(0, 'curl is not installed: this test needs the curl command (CI installs it)')
} else {
  t.test('the packed tarball installs into an app and relays curl to a hidden server', { timeout: 240_000 }, packAndEmbed)
}

// The oldest Fastify the package says it works with: the app installs that one, not ours, so a second copy would show.
function oldestFastify (): string {
  const range = (JSON.parse(spawnSync(process.execPath, ['-p', 'JSON.stringify(require(\'./package.json\').peerDependencies)'], { cwd: ROOT, encoding: 'utf8' }).stdout) as Record<string, string>).fastify
  return /^\^(5\.\d+\.\d+)$/.exec(range ?? '')?.[1] ?? `a peer range of the form ^5.x.y (got ${String(range)})`
}

function versionOf (name: string): string {
  return (JSON.parse(spawnSync(process.execPath, ['-p', `JSON.stringify(require('${name}/package.json'))`], { cwd: ROOT, encoding: 'utf8' }).stdout) as { version: string }).version
}

function must (t: Test, what: string, result: RunResult): void {
  if (result.code !== 0) t.fail(`${what} exited ${result.code}: ${result.stderr}${result.stdout.toString()}`)
}

async function packAndEmbed (t: Test): Promise<void> {
  const scratch = await mkdtemp(join(tmpdir(), 'rendezvous-pack-'))
  t.teardown(async () => { await rm(scratch, { recursive: true, force: true }) })

  const src = join(scratch, 'src')
  for (const entry of SOURCES) {
    if (existsSync(join(ROOT, entry))) await cp(join(ROOT, entry), join(src, entry), { recursive: true })
  }
  await symlink(join(ROOT, 'node_modules'), join(src, 'node_modules'), 'dir')
  must(t, 'npm pack', await run(t, 'npm', ['pack', '--pack-destination', scratch, '--no-fund'], { cwd: src, timeoutMs: 150_000 }))
  const tarball = (await readdir(scratch)).find(name => name.endsWith('.tgz'))
  if (tarball === undefined) {
    t.fail('npm pack made no tarball')
    return
  }

  const listing = await run(t, 'tar', ['-tzf', join(scratch, tarball)])
  const files = listing.stdout.toString().split('\n').filter(Boolean).map(f => f.replace(/^package\//, ''))
  // LICENSE, as package.json names MIT; SECURITY.md, which README and docs/security.md link to.
  for (const file of ['package.json', 'README.md', 'LICENSE', 'SECURITY.md', 'dist/index.js', 'dist/index.d.ts', 'dist/cli/main.js',
    'dist/entry/agent.js', 'dist/entry/agent.d.ts', 'dist/entry/client.js', 'dist/entry/client.d.ts',
    // What the install script needs to build the optional native splice.
    'native/splice.h', 'native/binding.c', 'native/io-thread.c', 'native/pump.c', 'scripts/build-native.js']) {
    t.ok(files.includes(file), `the tarball ships ${file}`)
  }
  t.same(files.filter(f => /^(test|lib|types|bench|native\/build)\//.test(f) || (f.endsWith('.ts') && !f.endsWith('.d.ts'))), [], 'no tests, no TypeScript sources, no prebuilt addon')

  const app = join(scratch, 'app')
  await mkdir(app)
  await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'embed-app', private: true, type: 'module' }))
  await cp(join(ROOT, 'test', 'fixtures', 'embed-app'), app, { recursive: true })
  // From the npm cache when it has everything (the suite's own install filled it), else the registry.
  must(t, 'npm install', await run(t, 'npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error',
    join(scratch, tarball), `fastify@${oldestFastify()}`, `@fastify/under-pressure@${versionOf('@fastify/under-pressure')}`
  ], { cwd: app, timeoutMs: 150_000 }))
  await oneFastify(t, app)

  // The install script built the native splice where a C compiler exists, and never failed the install where none does.
  const built = existsSync(join(app, 'node_modules', 'fastify-rendezvous', 'native', 'build', 'splice.node'))
  t.equal(built, spawnSync('cc', ['--version']).status === 0, `the native splice was ${built ? '' : 'not '}built at install`)

  const env = { ...HUB }
  const relay = spawnProc(t, 'relay app', process.execPath, ['relay.mjs'], { cwd: app, env })
  const port = (await relay.waitFor(/listening on (\d+)/))[1]
  const url = `http://127.0.0.1:${port}`
  const hidden = spawnProc(t, 'hidden server', process.execPath, ['hidden.cjs', url], { cwd: app, env })
  await hidden.waitFor(/parked \d/)

  const curl = async (path: string, args: string[]): Promise<{ statuses: number[], head: string, body: Buffer }> => {
    const name = randomBytes(4).toString('hex')
    const result = await run(t, 'curl', ['--silent', '--show-error', '--noproxy', '*', '--max-time', '30',
      '--dump-header', join(scratch, `${name}.head`), '--output', join(scratch, `${name}.body`), ...args, url + path])
    must(t, `curl ${path}`, result)
    const head = await readFile(join(scratch, `${name}.head`), 'latin1')
    const statuses = [...head.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map(m => Number(m[1]))
    return { statuses, head, body: await readFile(join(scratch, `${name}.body`)) }
  }

  const own = await curl('/app/hello', [])
  t.same(own.statuses, [200], 'the app\'s own route answers')
  t.match(JSON.parse(own.body.toString()), { hello: 'from the app' })

  const challenged = await curl('/behind/nat', [])
  t.same(challenged.statuses, [401])
  t.match(challenged.head, /^WWW-Authenticate: Digest realm="rendezvous", qop="auth, auth-int", nonce="[^"]+", opaque="[^"]+"\r$/m)

  const undecodable = await curl('/behind/caf%E9', [])
  t.same(undecodable.statuses, [401], 'a path the router cannot decode is challenged too (frameworkErrors)')

  const payload = Buffer.concat([Buffer.from([...Array(256).keys()]), randomBytes(4096)])
  await writeFile(join(scratch, 'payload'), payload)
  const relayed = await curl('/behind/nat?x=%20y', ['--digest', '--user', `${HUB.HUB_ID}:any`, '--data-binary', `@${join(scratch, 'payload')}`])
  t.same(relayed.statuses, [401, 200], 'challenged, then relayed')
  t.match(relayed.head, /^x-seen-request: POST \/behind\/nat\?x=%20y\r$/m, 'the hidden server saw the request line as sent')
  t.match(relayed.head, /^x-seen-authorization: none\r$/m, 'without the Authorization header')
  t.ok(relayed.body.equals(payload), `the body came back byte for byte (${relayed.body.length} of ${payload.length} bytes)`)

  const bin = await run(t, join(app, 'node_modules', '.bin', 'rendezvous'), ['ids', 'add', '--data-dir', join(scratch, 'ids'), '--json'], { cwd: app })
  must(t, 'the rendezvous bin', bin)
  t.match(JSON.parse(bin.stdout.toString()), { id: String, secret: /^[A-Z2-7]+$/ }, 'the bin is installed and runs')
}

/*
 * The app's Fastify is the plugin's: a second copy under the package would
 * take the type augmentation (`app.rendezvous`, the options of `register`)
 * away from the app's FastifyInstance, and double what an app loads.
 */
async function oneFastify (t: Test, app: string): Promise<void> {
  t.notOk(existsSync(join(app, 'node_modules', 'fastify-rendezvous', 'node_modules', 'fastify')), 'the package brings no Fastify of its own')
  const installed = JSON.parse(await readFile(join(app, 'node_modules', 'fastify', 'package.json'), 'utf8')) as { version: string }
  t.equal(installed.version, oldestFastify(), 'the app runs the oldest Fastify the package accepts')
  await writeFile(join(app, 'typed.mts'), [
    "import Fastify from 'fastify'",
    "import rendezvous from 'fastify-rendezvous'",
    'const app = Fastify()',
    'await app.register(rendezvous, { waitTimeout: 5000 })',
    'const parked: number = app.rendezvous.stats().parked',
    'export { parked }',
    ''
  ].join('\n'))
  const tsc = await run(t, process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '--noEmit', '--strict', '--skipLibCheck',
    '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--types', 'node', '--typeRoots', join(ROOT, 'node_modules', '@types'), 'typed.mts'], { cwd: app })
  t.equal(tsc.code, 0, `an app's TypeScript sees app.rendezvous and the plugin's options on its own Fastify: ${tsc.stdout.toString()}${tsc.stderr}`)
}
