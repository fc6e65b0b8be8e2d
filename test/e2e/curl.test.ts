import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFile, writeFile, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { Test } from 'tap'
import { run, type RunResult } from '../helpers/cli'
import { addId, startAgent, startServe, startWorld, type World } from '../helpers/e2e'
import { blobBytes, sha256, startHiddenSite, type SeenRequest } from '../helpers/hidden-site'

// Real curl against the real CLI processes: serve, ids add, agent.

const MB = 1024 * 1024
const CHALLENGE = /^Digest realm="rendezvous", qop="auth, auth-int", nonce="([^"]+)", opaque="([^"]+)"$/

const probe = spawnSync('curl', ['--version'], { encoding: 'utf8' })
if (probe.error !== undefined || probe.status !== 0) {
  t.plan(0, 'curl is not installed: these tests need the curl command (CI installs it)')
} else {
  tests()
}

interface Response {
  status: number
  /** Name (lower case) and value, in order, of the final response. */
  headers: Array<[string, string]>
  /** The raw header lines of the final response, as received. */
  lines: string[]
  /** The status of every response curl saw, e.g. [401, 200] for a Digest round. */
  statuses: number[]
  body: Buffer
  result: RunResult
}

function header (res: Response, name: string): string | undefined {
  return res.headers.find(([n]) => n === name.toLowerCase())?.[1]
}

function tests (): void {
  let world: World
  let scratch: string
  let count = 0

  t.before(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'rendezvous-curl-'))
    t.teardown(async () => { await rm(scratch, { recursive: true, force: true }) })
    world = await startWorld(t)
  })

  /** Runs curl with the rendezvous' CA; parses the headers it dumped and reads the body it saved. */
  async function curl (tt: Test, url: string, args: string[]): Promise<Response> {
    const n = ++count
    const headFile = join(scratch, `head-${n}`)
    const bodyFile = join(scratch, `body-${n}`)
    const result = await run(tt, 'curl', [
      '--silent', '--show-error', '--noproxy', '*', '--max-time', '30',
      '--cacert', world.rv.certPath, '--dump-header', headFile, '--output', bodyFile,
      ...args, url
    ])
    if (result.code !== 0) throw new Error(`curl ${args.join(' ')} ${url} exited ${result.code}: ${result.stderr}`)
    const dump = await readFile(headFile, 'latin1')
    const body = await readFile(bodyFile).catch(() => Buffer.alloc(0))
    const blocks = dump.split('\r\n\r\n').filter(b => b.startsWith('HTTP/'))
    const statuses = blocks.map(b => Number(/^HTTP\/[\d.]+ (\d{3})/.exec(b)?.[1]))
    const last = blocks.at(-1) ?? ''
    const lines = last.split('\r\n').slice(1)
    const headers = lines.map(line => {
      const colon = line.indexOf(':')
      return [line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()] as [string, string]
    })
    return { status: statuses.at(-1) ?? 0, headers, lines, statuses, body, result }
  }

  const digest = (id = world.creds.id, password = 'anything'): string[] => ['--digest', '--user', `${id}:${password}`]
  const basic = (id = world.creds.id): string[] => ['--basic', '--user', `${id}:x`]
  const lastSeen = (path: string): SeenRequest | undefined => world.site.seen.filter(r => r.url.startsWith(path)).at(-1)

  t.test('no credentials: 401 with the exact challenge, a fresh nonce each time', async t => {
    const first = await curl(t, `${world.rv.url}/some/page`, [])
    t.equal(first.status, 401)
    t.same(first.statuses, [401], 'one answer, nothing relayed')
    const fields = first.lines.filter(line => /^www-authenticate:/i.test(line))
    t.equal(fields.length, 1, 'one WWW-Authenticate field')
    const [name, ...rest] = fields[0].split(':')
    t.equal(name, 'WWW-Authenticate', 'the field name in the spec\'s case')
    const value = rest.join(':').trim()
    const m = CHALLENGE.exec(value)
    t.ok(m, `challenge ${JSON.stringify(value)} is exactly the spec's`)

    const second = await curl(t, `${world.rv.url}/some/page`, [])
    t.equal(second.status, 401)
    const again = CHALLENGE.exec(header(second, 'www-authenticate') ?? '')
    t.ok(again, 'second challenge has the same form')
    t.not(again?.[1], m?.[1], 'nonce is fresh')
    t.equal(world.site.seen.filter(r => r.url === '/some/page').length, 0, 'nothing reached the hidden server')
  })

  t.test('Digest GET of ~3 MB (Content-Length) is byte-exact', async t => {
    const size = 3 * MB + 17
    const res = await curl(t, `${world.rv.url}/blob?size=${size}&seed=curl-get`, digest())
    t.same(res.statuses, [401, 200], 'challenged, then relayed')
    t.equal(res.body.length, size, 'length')
    t.equal(sha256(res.body), sha256(blobBytes(size, 'curl-get')), 'sha256 of the bytes received')
    t.equal(header(res, 'x-body-sha256'), sha256(res.body), 'the hidden server sent these very bytes')
  })

  t.test('Digest GET of ~3 MB (chunked) is byte-exact', async t => {
    const size = 3 * MB + 5
    const res = await curl(t, `${world.rv.url}/blob?size=${size}&seed=curl-chunked&chunked=1`, digest())
    t.equal(res.status, 200)
    t.equal(header(res, 'transfer-encoding'), 'chunked')
    t.equal(res.body.length, size, 'length')
    t.equal(sha256(res.body), sha256(blobBytes(size, 'curl-chunked')), 'sha256 of the bytes received')
  })

  t.test('Digest POST of ~3 MB (--data-binary @file) echoes byte-exact', async t => {
    const body = randomBytes(3 * MB + 3)
    const file = join(scratch, 'post-digest.bin')
    await writeFile(file, body)
    const res = await curl(t, `${world.rv.url}/echo?via=curl`, [
      ...digest(), '--data-binary', `@${file}`, '--header', 'Content-Type: application/octet-stream'
    ])
    t.equal(res.status, 200)
    t.equal(res.statuses[0], 401, 'challenged first')
    t.equal(header(res, 'x-body-length'), String(body.length), 'the hidden server received the whole body')
    t.equal(header(res, 'x-body-sha256'), sha256(body), 'the hidden server received these very bytes')
    t.equal(res.body.length, body.length, 'echo length')
    t.ok(res.body.equals(body), 'echo is byte-exact')
    const seen = lastSeen('/echo?via=curl')
    t.equal(seen?.method, 'POST')
    t.notOk(seen?.rawHeaders.some(h => h.toLowerCase() === 'authorization'), 'no Authorization reached the hidden server')
  })

  t.test('the hidden server sees every header but Authorization', async t => {
    const res = await curl(t, `${world.rv.url}/headers?probe=1&x=y`, [
      ...digest(),
      '--header', 'X-E2E-One: first',
      '--header', 'X-E2E-One: second',
      '--header', 'X-Spaced:    padded value   ',
      '--user-agent', 'e2e-curl/1.0'
    ])
    t.equal(res.status, 200)
    const seen = JSON.parse(res.body.toString('utf8')) as SeenRequest
    t.equal(seen.method, 'GET')
    t.equal(seen.url, '/headers?probe=1&x=y', 'request target as sent')
    t.equal(seen.httpVersion, '1.1')
    const pairs: Array<[string, string]> = []
    for (let i = 0; i < seen.rawHeaders.length; i += 2) pairs.push([seen.rawHeaders[i], seen.rawHeaders[i + 1]])
    t.notOk(pairs.some(([n]) => n.toLowerCase() === 'authorization'), 'Authorization was stripped')
    t.same(pairs.filter(([n]) => n === 'X-E2E-One').map(([, v]) => v), ['first', 'second'], 'duplicates kept, in order, name case kept')
    t.same(pairs.find(([n]) => n === 'X-Spaced')?.[1], 'padded value', 'value minus edge whitespace')
    t.equal(pairs.find(([n]) => n === 'Host')?.[1], `127.0.0.1:${world.rv.port}`, 'Host as sent')
    t.equal(pairs.find(([n]) => n === 'User-Agent')?.[1], 'e2e-curl/1.0')
    t.ok(pairs.some(([n]) => n === 'Accept'), 'curl\'s Accept arrived')
  })

  t.test('a path Fastify\'s router cannot decode is challenged like any other, then relayed as sent', async t => {
    for (const path of ['/caf%E9.txt', '/a%zz', '/%C0%AF']) {
      const res = await curl(t, `${world.rv.url}${path}`, digest())
      t.same(res.statuses, [401, 404], `${path}: challenged, then the hidden server's own 404`)
      t.equal(res.body.toString(), 'hidden site: no such page\n')
      t.equal(lastSeen(path)?.url, path, `${path}: the request target reached the hidden server as sent`)
    }
    const unknown = await curl(t, `${world.rv.url}/a%zz`, digest('no-such-hidden-server'))
    t.same(unknown.statuses, [401, 404], 'an unknown ID: challenged, then 404')
    t.equal(header(unknown, 'connection'), 'close')
    t.equal(unknown.body.toString(), 'no hidden server has this ID\n', 'the rendezvous\'s 404, not a hidden server\'s')
  })

  t.test('an HTTP/1.0 client (ALPN http/1.0) is served and relayed', async t => {
    const res = await curl(t, `${world.rv.url}/blob?size=1000&seed=one-oh`, ['--http1.0', ...digest()])
    t.same(res.statuses, [401, 200])
    t.equal(sha256(res.body), sha256(blobBytes(1000, 'one-oh')))
    t.equal(lastSeen('/blob?size=1000&seed=one-oh')?.httpVersion, '1.0', 'the request line went on as HTTP/1.0')
  })

  t.test('Basic works too: GET and POST byte-exact, no challenge round', async t => {
    const size = 3 * MB + 1
    const get = await curl(t, `${world.rv.url}/blob?size=${size}&seed=curl-basic`, basic())
    t.same(get.statuses, [200], 'relayed at once')
    t.equal(sha256(get.body), sha256(blobBytes(size, 'curl-basic')), 'GET byte-exact')

    const body = randomBytes(MB + 11)
    const file = join(scratch, 'post-basic.bin')
    await writeFile(file, body)
    const post = await curl(t, `${world.rv.url}/echo?via=basic`, [...basic(), '--data-binary', `@${file}`])
    t.equal(post.status, 200)
    t.ok(post.body.equals(body), 'POST echo byte-exact')
    const seen = lastSeen('/echo?via=basic')
    t.notOk(seen?.rawHeaders.some(h => h.toLowerCase() === 'authorization'), 'no Authorization reached the hidden server')
  })

  t.test('the ID matches whatever its case', async t => {
    const res = await curl(t, `${world.rv.url}/blob?size=1000&seed=upper`, digest(world.creds.id.toUpperCase()))
    t.equal(res.status, 200)
    t.equal(sha256(res.body), sha256(blobBytes(1000, 'upper')))
  })

  t.test('an unknown ID gets 404, then close', async t => {
    const before = world.site.seen.length
    const viaDigest = await curl(t, `${world.rv.url}/blob?size=10&seed=x`, digest('no-such-hidden-server'))
    t.same(viaDigest.statuses, [401, 404], 'Digest: challenged, then 404')
    t.equal(header(viaDigest, 'connection'), 'close')
    const viaBasic = await curl(t, `${world.rv.url}/blob?size=10&seed=x`, basic('no-such-hidden-server'))
    t.same(viaBasic.statuses, [404], 'Basic: 404')
    t.equal(header(viaBasic, 'connection'), 'close')
    t.equal(world.site.seen.length, before, 'nothing reached the hidden server')
  })

  t.test('an agent parks more connections than the per-address cap, and curl from the same address still gets through', async t => {
    const site = await startHiddenSite(t)
    const rv = await startServe(t, { extraArgs: ['--max-connections-per-address', '7'] })
    const creds = await addId(t, rv.dataDir)
    // Ten parked from 127.0.0.1 under a cap of 7: accepted CONNECTs leave the count. (Ten dialled at
    // once can meet the cap while their handshakes run, and the agent dials again after a refusal.)
    const agent = await startAgent(t, rv, creds, site.url, { pool: 10, parked: 10 })
    t.teardown(() => {
      if (!t.passing()) t.comment(`serve output:\n${rv.proc.output()}\nagent output:\n${agent.output()}`)
    })
    const refusedAtCap = async (): Promise<number> => {
      const res = await run(t, 'curl', ['--silent', '--show-error', '--noproxy', '*', '--max-time', '30', '--cacert', rv.certPath, `${rv.url}/metrics`])
      return Number(/rendezvous_connections_refused_total\{reason="per_address_cap"\} (\d+)/.exec(res.stdout.toString('latin1'))?.[1] ?? 0)
    }
    const refusedBefore = await refusedAtCap()
    const args = ['--silent', '--show-error', '--noproxy', '*', '--max-time', '30', '--cacert', rv.certPath,
      '--digest', '--user', `${creds.id}:anything`, '--output', '-', '--write-out', '\n%{http_code}']
    // Three at once, each on its own connection: three clients and at most three replacements being dialled, under the cap.
    const seeds = ['a', 'b', 'c']
    const results = await Promise.all(seeds.map(async seed => await run(t, 'curl', [...args, `${rv.url}/blob?size=5000&seed=${seed}`])))
    for (const [i, seed] of seeds.entries()) {
      const out = results[i]!.stdout
      t.equal(out.subarray(out.length - 4).toString('latin1'), '\n200', `request ${seed}: 200`)
      t.ok(out.subarray(0, out.length - 4).equals(blobBytes(5000, seed)), `request ${seed}: the exact bytes`)
    }
    await rv.waitHealth(h => h.parked === 10 && h.spliced === 0, 'ten parked again, nothing spliced')
    t.equal(await refusedAtCap(), refusedBefore, 'no client and no replacement was closed at the cap')
  })

  t.test('no agent: 503 with Retry-After after the wait timeout; serve exits 0 on SIGTERM', async t => {
    const site = await startHiddenSite(t)
    const rv = await startServe(t, { waitTimeout: 1 })
    const creds = await addId(t, rv.dataDir)
    const agent = await startAgent(t, rv, creds, site.url)
    t.teardown(() => {
      if (!t.passing()) t.comment(`serve output:\n${rv.proc.output()}\nagent output:\n${agent.output()}`)
    })
    const args = ['--silent', '--show-error', '--noproxy', '*', '--max-time', '30', '--cacert', rv.certPath,
      '--digest', '--user', `${creds.id}:anything`, '--output', '-', '--write-out', '\n%{http_code}']
    const ok = await run(t, 'curl', [...args, `${rv.url}/blob?size=100&seed=s`])
    t.match(ok.stdout.toString('latin1'), /\n200$/, 'relayed while the agent runs')

    await agent.stop('SIGTERM', 5000)
    await rv.waitHealth(h => h.parked === 0, 'no parked connections after the agent stopped')

    const res = await run(t, 'curl', [...args, '--include', `${rv.url}/blob?size=100&seed=s`])
    t.equal(res.code, 0, `curl ran: ${res.stderr}`)
    const text = res.stdout.toString('latin1')
    t.match(text, /\n503$/, 'final status 503')
    const final = text.slice(text.lastIndexOf('HTTP/1.1 '))
    t.match(final, /^HTTP\/1\.1 503 Service Unavailable\r\n/)
    t.match(final, /\r\nRetry-After: \d+\r\n/i, 'Retry-After in seconds')
    t.match(final, /\r\nConnection: close\r\n/i, 'then close')
    t.ok(res.ms >= 900, `answered after the 1 s wait timeout (${res.ms} ms)`)
    t.ok(res.ms < 10_000, `and not much later (${res.ms} ms)`)
    t.equal(site.seen.filter(r => r.url.startsWith('/blob')).length, 1, 'only the first request reached the hidden server')

    const exit = await rv.proc.stop('SIGTERM', 15_000)
    t.same(exit, { code: 0, signal: null }, 'serve exits 0 after SIGTERM')
  })
}
