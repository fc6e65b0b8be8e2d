import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { describeExit, run } from '../helpers/cli'
import { startWorld, type World } from '../helpers/e2e'
import { blobBytes, sha256, type SeenRequest } from '../helpers/hidden-site'

// Python's requests with HTTPDigestAuth, against the real CLI processes.

const MB = 1024 * 1024
const PYTHON = process.env.RENDEZVOUS_PYTHON ?? 'python3'
const SCRIPT = join(__dirname, 'python_client.py')

interface PyResult {
  name: string
  status: number
  history: number[]
  /** Lower-case names. */
  headers: Record<string, string>
  length: number
  sha256: string
  text: string
}

const problem = pythonProblem()
if (problem !== undefined) {
  if (process.env.CI === 'true') {
    t.fail(`${problem}; CI must provide it (apt-get install python3-requests, or set RENDEZVOUS_PYTHON to a python3 that has requests)`)
  } else {
    t.plan(0, `${problem}: skipping the Python client tests (set RENDEZVOUS_PYTHON to a python3 with requests)`)
  }
} else {
  tests()
}

function pythonProblem (): string | undefined {
  const probe = spawnSync(PYTHON, ['-c', 'import requests, sys; sys.stdout.write(requests.__version__)'], { encoding: 'utf8', timeout: 20_000 })
  if (probe.error !== undefined) return `cannot run ${PYTHON}: ${probe.error.message}`
  if (probe.status !== 0) return `${PYTHON} cannot import requests: ${probe.stderr.trim().split('\n').at(-1) ?? ''}`
  return undefined
}

function tests (): void {
  let world: World
  let scratch: string
  const results = new Map<string, PyResult>()
  const getSize = 4 * MB + 123
  const chunkedSize = 3 * MB + 7
  const post = randomBytes(4 * MB + 9)

  t.before(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'rendezvous-python-'))
    t.teardown(async () => { await rm(scratch, { recursive: true, force: true }) })
    world = await startWorld(t)
    const postFile = join(scratch, 'post.bin')
    await writeFile(postFile, post)
    const { id } = world.creds
    const config = {
      base: world.rv.url,
      ca: world.rv.certPath,
      requests: [
        { name: 'get', method: 'GET', path: `/blob?size=${getSize}&seed=py-get`, user: id },
        { name: 'chunked', method: 'GET', path: `/blob?size=${chunkedSize}&seed=py-chunked&chunked=1`, user: id },
        { name: 'post', method: 'POST', path: '/echo?via=python', user: id, body_file: postFile, headers: { 'Content-Type': 'application/octet-stream' } },
        { name: 'headers', method: 'GET', path: '/headers?from=python', user: id, headers: { 'X-From-Python': 'yes' } },
        { name: 'unknown', method: 'GET', path: '/blob?size=10&seed=x', user: 'no-such-hidden-server' }
      ]
    }
    const res = await run(t, PYTHON, [SCRIPT, JSON.stringify(config)], { timeoutMs: 45_000 })
    if (res.code !== 0) throw new Error(`${PYTHON} ${SCRIPT} exited ${describeExit(res)}:\n${res.stderr}`)
    const parsed = JSON.parse(res.stdout.toString('utf8')) as { results: PyResult[], requests_version: string }
    t.comment(`requests ${parsed.requests_version}`)
    for (const r of parsed.results) results.set(r.name, r)
  })

  const result = (name: string): PyResult => {
    const r = results.get(name)
    if (r === undefined) throw new Error(`no result for ${name}`)
    return r
  }

  t.test('Digest GET of ~4 MB (Content-Length) is byte-exact', async t => {
    const r = result('get')
    t.equal(r.status, 200)
    t.same(r.history, [401], 'challenged, then relayed')
    t.equal(r.length, getSize, 'length')
    t.equal(r.sha256, sha256(blobBytes(getSize, 'py-get')), 'sha256 of the bytes received')
  })

  t.test('Digest GET of ~3 MB (chunked) is byte-exact', async t => {
    const r = result('chunked')
    t.equal(r.status, 200)
    t.equal(r.headers['transfer-encoding'], 'chunked')
    t.equal(r.length, chunkedSize, 'length')
    t.equal(r.sha256, sha256(blobBytes(chunkedSize, 'py-chunked')), 'sha256 of the bytes received')
  })

  t.test('Digest POST of ~4 MB echoes byte-exact', async t => {
    const r = result('post')
    t.equal(r.status, 200)
    t.same(r.history, [401], 'challenged, then relayed')
    t.equal(r.headers['x-body-length'], String(post.length), 'the hidden server received the whole body')
    t.equal(r.headers['x-body-sha256'], sha256(post), 'the hidden server received these very bytes')
    t.equal(r.length, post.length, 'echo length')
    t.equal(r.sha256, sha256(post), 'echo is byte-exact')
    const seen = world.site.seen.filter(s => s.url === '/echo?via=python')
    t.equal(seen.length, 1, 'the body reached the hidden server once')
    t.notOk(seen[0]?.rawHeaders.some(h => h.toLowerCase() === 'authorization'), 'no Authorization reached the hidden server')
  })

  t.test('the hidden server sees every header but Authorization', async t => {
    const r = result('headers')
    t.equal(r.status, 200)
    const seen = JSON.parse(r.text) as SeenRequest
    t.equal(seen.url, '/headers?from=python')
    const names = seen.rawHeaders.filter((_v, i) => i % 2 === 0)
    t.notOk(names.some(n => n.toLowerCase() === 'authorization'), 'Authorization was stripped')
    const value = (name: string): string | undefined => seen.rawHeaders[seen.rawHeaders.findIndex((v, i) => i % 2 === 0 && v === name) + 1]
    t.equal(value('X-From-Python'), 'yes')
    t.equal(value('Host'), `127.0.0.1:${world.rv.port}`)
    t.match(value('User-Agent'), /^python-requests\//)
  })

  t.test('an unknown ID gets 404', async t => {
    const r = result('unknown')
    t.equal(r.status, 404)
    t.same(r.history, [401], 'challenged, then 404')
    t.equal(r.headers.connection, 'close')
  })
}
