import { execFile, execFileSync } from 'node:child_process'
import { createHash, randomBytes, X509Certificate } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { request, type RequestOptions } from 'node:https'
import { createServer, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import { runDemo } from '../../lib/cli/demo'
import { WS_GREETING } from '../../lib/demo/site'
import { buildProblem, runCli, startCli, type CliProcess } from '../helpers/cli'

/*
 * The built `rendezvous demo`, as a user starts it: it must print what to
 * type, really serve the hidden page through the relay to a client that
 * answers the Digest challenge, and stop cleanly on a signal.
 */

const URL_LINE = /^ {2}URL +(https:\/\/127\.0\.0\.1:(\d+)\/)$/m
const ID_LINE = /^ {2}User name +(\S+) +\(any password\)$/m
const CERT_LINE = /^ {2}Certificate +(\S+) \(/m
const FINGERPRINT_LINE = /^ {2}SHA-256 +([0-9A-F:]+)$/m
const CURL_LINE = /^ {2}(curl --digest .*)$/m

interface Response { status: number, headers: Record<string, string | string[] | undefined>, body: string }

function send (url: string, opts: RequestOptions & { body?: string }): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, ...opts }, res => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { body += chunk })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
    })
    req.setTimeout(10_000, () => req.destroy(new Error(`no answer from ${url} within 10 s`)))
    req.on('error', reject)
    req.end(opts.body)
  })
}

const md5 = (text: string): string => createHash('md5').update(text).digest('hex')

/** Parses `Digest k="v", k=v` into a map; enough for the challenge this server sends. */
function challengeParams (header: string): Map<string, string> {
  const params = new Map<string, string>()
  for (const m of header.replace(/^Digest\s+/i, '').matchAll(/([a-z]+)=(?:"([^"]*)"|([^,\s]+))/gi)) {
    params.set(m[1].toLowerCase(), m[2] ?? m[3])
  }
  return params
}

/**
 * What a browser does: the request without credentials, then again with an
 * RFC 7616 Digest answer (MD5, qop=auth) whose user name is the ID.
 */
async function digestRequest (url: string, id: string, ca: Buffer, opts: { method?: string, body?: string, headers?: Record<string, string> } = {}): Promise<Response & { challenge: string }> {
  const method = opts.method ?? 'GET'
  const first = await send(url, { method, ca, headers: opts.headers, body: opts.body })
  if (first.status !== 401) throw new Error(`expected a 401 challenge, got ${first.status}: ${first.body}`)
  const challenge = String(first.headers['www-authenticate'])
  const params = challengeParams(challenge)
  const realm = params.get('realm') ?? ''
  const nonce = params.get('nonce') ?? ''
  const uri = new URL(url).pathname
  const cnonce = randomBytes(8).toString('hex')
  const nc = '00000001'
  const response = md5(`${md5(`${id}:${realm}:x`)}:${nonce}:${nc}:${cnonce}:auth:${md5(`${method}:${uri}`)}`)
  const authorization = `Digest username="${id}", realm="${realm}", nonce="${nonce}", uri="${uri}", ` +
    `algorithm=MD5, qop=auth, nc=${nc}, cnonce="${cnonce}", response="${response}"` +
    (params.has('opaque') ? `, opaque="${params.get('opaque') ?? ''}"` : '')
  const second = await send(url, { method, ca, headers: { ...opts.headers, Authorization: authorization }, body: opts.body })
  return { ...second, challenge }
}

function sink (): Writable & { text: string } {
  const out = new Writable({
    write (chunk, _encoding, callback) { out.text += String(chunk); callback() }
  }) as Writable & { text: string }
  out.text = ''
  return out
}

async function demoInProcess (args: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  const stdout = sink()
  const stderr = sink()
  const code = await runDemo(args, { stdout, stderr, env: {} })
  return { code, stdout: stdout.text, stderr: stderr.text }
}

function assertOneLineError (t: Test, res: { code: number | null, stdout: string, stderr: string }, code: number, pattern: RegExp): void {
  t.equal(res.code, code, `exit code ${code}`)
  t.match(res.stderr, /^rendezvous: [^\n]+\n$/, `one line on stderr, got: ${res.stderr}`)
  t.match(res.stderr, pattern)
  t.notMatch(res.stderr, /\n\s+at /, 'no stack trace')
  t.notMatch(res.stdout, /URL/, 'never started')
}

// Wrapped like main() does: CliErrors print one line and exit with their code.
async function demoLikeMain (args: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  try {
    return await demoInProcess(args)
  } catch (err) {
    const e = err as Error & { exitCode?: number }
    return { code: e.exitCode ?? 1, stdout: '', stderr: `rendezvous: ${e.message.split('\n')[0]}\n` }
  }
}

t.test('demo --help prints the usage and exits 0', async t => {
  const res = await demoInProcess(['--help'])
  t.equal(res.code, 0)
  t.match(res.stdout, /^usage: rendezvous demo \[--port 8443\]/)
  t.match(res.stdout, /--data-dir DIR/)
  t.equal(res.stderr, '')
})

t.test('bad flags are one-line errors with exit code 2', async t => {
  const cases: Array<[string[], RegExp]> = [
    [['--port', 'abc'], /--port must be an integer from 0 to 65535, got "abc"/],
    [['--port', '65536'], /--port must be an integer/],
    [['--port', '-1'], /--port/],
    [['--port'], /--port needs a value/],
    [['--nope'], /unknown option --nope for demo/],
    [['extra'], /unexpected argument extra for demo/],
    [['--help=yes'], /--help does not take a value/],
    [['--id', 'not an id'], /--id must be 1 to 128 characters/],
    [['--data-dir', ' '], /--data-dir must not be empty/],
    [['--log-level', 'loud'], /--log-level must be one of/]
  ]
  for (const [args, pattern] of cases) {
    await t.test(args.join(' '), async t => assertOneLineError(t, await demoLikeMain(args), 2, pattern))
  }
})

// dist/ is what users run, so it is what this tests. It is not rebuilt here: tap runs files in
// parallel, and rewriting dist/ under the other CLI tests would break them. npm test builds first;
// a missing build fails, a stale one is reported as a comment by buildProblem.
t.test('the built bin', async t => {
  const problem = buildProblem(t)
  if (problem !== undefined) {
    t.fail(problem)
    return
  }

  t.test('main dispatches demo, and a bad flag is still one line with exit 2', async t => {
    const res = await runCli(t, ['demo', '--port', 'nope'])
    assertOneLineError(t, { code: res.code, stdout: res.stdout, stderr: res.stderr }, 2, /--port must be an integer/)
    const help = await runCli(t, ['--help'])
    t.match(help.stdout, /^ {2}demo +/m, 'the main usage lists demo')
  })

  t.test('demo --port 0 serves the hidden page through the relay, and SIGTERM exits 0', async t => {
    const proc = startCli(t, ['demo', '--port', '0'])
    const [, url, port] = await proc.waitFor(URL_LINE, 30_000)
    const out = proc.stdout()
    const id = ID_LINE.exec(out)?.[1] ?? ''
    const certPath = CERT_LINE.exec(out)?.[1] ?? ''
    t.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'a fresh UUID to type as the user name')
    t.not(Number(port), 0, 'a real port')
    t.ok(existsSync(certPath), 'the printed certificate exists')
    const ca = readFileSync(certPath)
    t.equal(FINGERPRINT_LINE.exec(out)?.[1], new X509Certificate(ca).fingerprint256, 'the printed fingerprint is the certificate\'s')
    t.equal(CURL_LINE.exec(out)?.[1], `curl --digest -u ${id}:x --cacert ${certPath} ${url}`, 'a curl command to try')

    await t.test('GET / answers the Digest challenge, then gets the page', async t => {
      const res = await digestRequest(url, id, ca)
      t.match(res.challenge, /^Digest realm="rendezvous", qop="auth, auth-int", nonce="[^"]+", opaque="[^"]+"$/)
      t.equal(res.status, 200)
      t.match(res.headers['content-type'], /^text\/html/)
      t.match(res.body, '<script src="/app.js"></script>')
      t.match(res.body, `data-rendezvous-id="${id}"`)
    })

    await t.test('the page\'s script and image come through too', async t => {
      const js = await digestRequest(`${url}app.js`, id, ca)
      t.equal(js.status, 200)
      t.match(js.headers['content-type'], /^text\/javascript/)
      t.match(js.body, '/ws?rendezvous=')
      const logo = await digestRequest(`${url}logo.svg`, id, ca)
      t.equal(logo.status, 200)
      t.equal(logo.headers['content-type'], 'image/svg+xml')
      t.match(logo.body, /^<\?xml[^]*<svg /)
    })

    await t.test('the form POST round-trips, escaped', async t => {
      const res = await digestRequest(`${url}submit`, id, ca, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ message: 'héllo <b>&' }).toString()
      })
      t.equal(res.status, 200)
      t.match(res.body, '<strong id="value">héllo &#60;b&#62;&#38;</strong>')
    })

    await t.test('a WebSocket with ?rendezvous=ID is greeted and echoed', async t => {
      const ws = new WebSocket(`wss://127.0.0.1:${port}/ws?rendezvous=${id}`, { ca })
      t.teardown(() => ws.terminate())
      const received: string[] = []
      const got = (n: number): Promise<void> => new Promise((resolve, reject) => {
        const check = (): void => { if (received.length >= n) { ws.off('message', check); resolve() } }
        ws.on('message', (data) => { received.push(String(data)); check() })
        ws.once('error', reject)
        check()
      })
      await new Promise<void>((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
      ws.send('over the relay')
      await got(2)
      t.same(received, [WS_GREETING, 'over the relay'])
      const closed = new Promise<number>(resolve => ws.once('close', code => resolve(code)))
      ws.close(1000)
      t.equal(await closed, 1000, 'a clean close')
    })

    const curl = spawnable('curl') ? false : 'curl is not installed'
    await t.test('the printed curl command works as printed', { skip: curl }, async t => {
      const command = CURL_LINE.exec(out)?.[1] ?? ''
      const body = await new Promise<string>((resolve, reject) => {
        execFile('sh', ['-c', `${command} --silent --show-error --max-time 10`], (err, stdout, stderr) => {
          if (err !== null) reject(new Error(`${command}: ${stderr}`))
          else resolve(stdout)
        })
      })
      t.match(body, /<h1>Hello from the hidden server<\/h1>/)
    })

    const exit = await proc.stop('SIGTERM', 15_000)
    t.same(exit, { code: 0, signal: null }, 'SIGTERM exits 0')
    t.match(proc.stdout(), /rendezvous demo: stopping\n$/)
    t.notOk(existsSync(certPath), 'the temporary data dir is removed')
    t.notMatch(proc.stderr(), /Error|error/, `nothing alarming on stderr: ${proc.stderr()}`)
  })

  t.test('--data-dir keeps the ID and certificate, --id reuses it, SIGINT exits 0', async t => {
    const dataDir = t.testdir()
    const run = async (): Promise<{ proc: CliProcess, url: string }> => {
      const proc = startCli(t, ['demo', '--port', '0', '--data-dir', dataDir, '--id', 'My-Box'])
      const [, url] = await proc.waitFor(URL_LINE, 30_000)
      return { proc, url }
    }
    const first = await run()
    t.match(first.proc.stdout(), /^ {2}User name +my-box +\(any password\)$/m, 'the ID in canonical form')
    t.match(first.proc.stdout(), `Certificate  ${join(dataDir, 'tls', 'cert.pem')} (self-signed)`)
    const ca = readFileSync(join(dataDir, 'tls', 'cert.pem'))
    t.equal((await digestRequest(first.url, 'MY-BOX', ca)).status, 200, 'IDs match case-insensitively')
    t.same(await first.proc.stop('SIGINT'), { code: 0, signal: null })
    const ids = JSON.parse(readFileSync(join(dataDir, 'ids.json'), 'utf8')) as { ids: Record<string, { secret: string }> }
    t.same(Object.keys(ids.ids), ['my-box'], 'the ID stays in the data dir')

    const second = await run()
    t.equal((await digestRequest(second.url, 'my-box', ca)).status, 200, 'the same ID and certificate work again')
    const after = JSON.parse(readFileSync(join(dataDir, 'ids.json'), 'utf8')) as { ids: Record<string, { secret: string }> }
    t.same(after, ids, 'reused, not provisioned again')
    t.same(await second.proc.stop('SIGTERM'), { code: 0, signal: null })
  })

  t.test('a port in use is a one-line error with exit 1', async t => {
    const blocker = createServer()
    await new Promise<void>(resolve => blocker.listen(0, '127.0.0.1', resolve))
    t.teardown(() => blocker.close())
    const port = (blocker.address() as AddressInfo).port
    const res = await runCli(t, ['demo', '--port', String(port)], { timeoutMs: 30_000 })
    assertOneLineError(t, { code: res.code, stdout: res.stdout, stderr: res.stderr }, 1, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: the port is already in use`))
  })
})

function spawnable (command: string): boolean {
  try {
    execFileSync(command, ['--version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}
