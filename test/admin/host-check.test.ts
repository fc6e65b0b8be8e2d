import { existsSync } from 'node:fs'
import { chromium } from 'playwright-core'
import { Registry } from 'prom-client'
import t from 'tap'
import { isLoopbackAddress, isLoopbackHost } from '../../lib/admin/host-check'
import { startRendezvous } from '../helpers/rendezvous'
import { TOKEN } from './helpers'
import { adminCounts, parse, raw, SECURITY_HEADERS } from './raw'

/*
 * DNS rebinding: a page on attacker.example whose name then resolves to
 * 127.0.0.1 reaches a loopback admin listener as its own origin, with
 * `Host: attacker.example`. Bound to loopback, the listener answers only to
 * a loopback Host: any other gets a JSON 421 with the usual headers,
 * counted, before the token is looked at.
 */

const request = (method: string, path: string, host: string | undefined, extra = ''): string =>
  `${method} ${path} HTTP/1.1\r\n${host === undefined ? '' : `Host: ${host}\r\n`}${extra}Content-Length: 0\r\nConnection: close\r\n\r\n`
const bearer = `Authorization: Bearer ${TOKEN}\r\n`

t.test('which bind addresses and Host fields are loopback', async t => {
  for (const address of ['127.0.0.1', '127.1.2.3', '::1', '0:0:0:0:0:0:0:1', 'localhost', 'LocalHost', '::ffff:127.0.0.1']) t.ok(isLoopbackAddress(address), address)
  for (const address of ['0.0.0.0', '::', '10.0.0.1', '128.0.0.1', 'example.com', '::2', '::ffff:10.0.0.1']) t.notOk(isLoopbackAddress(address), address)
  for (const host of ['localhost', 'LOCALHOST:8080', '127.0.0.1', '127.9.9.9:1', '[::1]', '[::1]:9443', '[0:0::1]:1', 'localhost:']) t.ok(isLoopbackHost(host), host)
  const foreign = ['attacker.example', 'attacker.example:9443', 'localhost.attacker.example', '127.0.0.1.attacker.example', '127.0.0.1@attacker.example',
    'attacker.example@127.0.0.1', '[::2]', '::1', '[::1', '127.0.0.256', '2130706433', '', ' localhost', 'localhost/x']
  for (const host of foreign) t.notOk(isLoopbackHost(host), JSON.stringify(host))
})

t.test('bound to loopback, a request that names another host is refused with 421, counted, whoever it is for', async t => {
  const metrics = new Registry()
  const relay = await startRendezvous({ plugin: { metrics, admin: { port: 0, token: TOKEN } } })
  t.teardown(relay.close)
  const port = relay.app.rendezvous.adminAddress()!.port
  const refused: Array<[string, string, string, string]> = [
    ['GET', '/', 'attacker.example', ''],
    ['GET', '/admin.js', `attacker.example:${port}`, ''],
    ['GET', '/api/ids', `attacker.example:${port}`, bearer],
    ['POST', '/api/ids', '10.0.0.1', bearer],
    ['DELETE', '/api/ids/hub-1', 'localhost.attacker.example', bearer],
    ['POST', '/api/ids/hub-1/rotate', '[::2]', bearer],
    ['GET', '/%zz', 'attacker.example', bearer],
    ['GET', '/nothing-here', 'attacker.example', '']
  ]
  for (const [method, path, host, extra] of refused) {
    const answer = parse(await raw(port, request(method, path, host, extra)))
    t.equal(answer.status, 421, `${method} ${path} Host: ${host}`)
    t.match(answer.headers['content-type'], /^application\/json/)
    for (const name of SECURITY_HEADERS) t.ok(answer.headers[name], `${name}`)
    const body = JSON.parse(answer.body)
    t.same(Object.keys(body).sort(), ['error', 'message'])
    t.equal(body.error, 'misdirected_request')
    t.match(body.message, /loopback/)
  }
  t.same((await relay.registry.list()).map(r => r.id), ['hub-1'], 'nothing was added, removed or rotated')

  const allowed = ['localhost', `localhost:${port}`, 'LOCALHOST:1', '127.0.0.1', `127.0.0.1:${port}`, '127.3.2.1:22', '[::1]', '[::1]:8080']
  for (const host of allowed) {
    t.equal(parse(await raw(port, request('GET', '/', host))).status, 200, `the page, Host: ${host}`)
    t.match(await raw(port, request('GET', '/api/ids', host, bearer)), /^HTTP\/1\.1 200 [^]*"ids":\[/, `the API, Host: ${host}`)
  }
  t.equal(parse(await raw(port, 'GET / HTTP/1.0\r\n\r\n')).status, 200, 'HTTP/1.0 without Host: no browser sends that, it is let on')
  t.equal(parse(await raw(port, request('GET', '/api/ids', 'localhost'))).status, 401, 'a loopback Host still needs the token')

  const counted = await adminCounts(metrics)
  t.equal(counted['page 421'], 2, 'the page and its script')
  t.equal(counted['list 421'], 1)
  t.equal(counted['add 421'], 1)
  t.equal(counted['remove 421'], 1)
  t.equal(counted['rotate 421'], 1)
  t.equal(counted['other 421'], 2, 'a path the router could not read, and an unknown one')
})

t.test('bound to a wildcard address, Host is not checked (documented)', async t => {
  const relay = await startRendezvous({ plugin: { admin: { host: '0.0.0.0', port: 0, token: TOKEN } } })
  t.teardown(relay.close)
  const port = relay.app.rendezvous.adminAddress()!.port
  t.equal(parse(await raw(port, request('GET', '/', 'relay.example.org'))).status, 200)
  t.match(await raw(port, request('GET', '/api/ids', `relay.example.org:${port}`, bearer)), /^HTTP\/1\.1 200 [^]*"ids":\[/)
})

const CHROMIUM = process.env.RENDEZVOUS_CHROMIUM ?? '/usr/bin/chromium'

t.test('Chromium, with attacker.example resolving to 127.0.0.1, gets 421 from the loopback admin listener', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing` }, async t => {
  const relay = await startRendezvous({ plugin: { admin: { port: 0, token: TOKEN } } })
  t.teardown(relay.close)
  const port = relay.app.rendezvous.adminAddress()!.port
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--host-resolver-rules=MAP attacker.example 127.0.0.1'],
    timeout: 15_000
  })
  t.teardown(() => browser.close().catch(() => {}))
  const page = await browser.newPage()
  const rebound = await page.goto(`http://attacker.example:${port}/`)
  t.equal(rebound?.status(), 421, 'the page on the attacker\'s name')
  t.equal((await rebound?.json())?.error, 'misdirected_request')
  // From the attacker's origin, a script would ask the API: the same 421, whatever token it guesses.
  const status = await page.evaluate(`fetch('/api/ids', { headers: { authorization: 'Bearer ${TOKEN}' } }).then(r => r.status)`)
  t.equal(status, 421, 'the API from the attacker\'s origin, even with the right token')
  for (const origin of [`http://localhost:${port}`, `http://127.0.0.1:${port}`]) {
    t.equal((await page.goto(`${origin}/`))?.status(), 200, origin)
  }
})
