import { existsSync } from 'node:fs'
import { chromium } from 'playwright-core'
import t from 'tap'
import { startRendezvous, untilParked } from '../helpers/rendezvous'
import { adminUrl, TOKEN } from './helpers'
import { parse, raw } from './raw'

/*
 * `.` and `..` are valid IDs ([A-Za-z0-9._~-]), but URL parsers drop such
 * path segments, written %2E too: the page's rotate, disconnect and remove
 * went to /api/ids/rotate, /api/rotate or /api/ids/. The page writes each
 * dot of such an ID as %252E, which the listener reads as a dot there; a
 * client that keeps the path as it is may send %2E.
 */

const CHROMIUM = process.env.RENDEZVOUS_CHROMIUM ?? '/usr/bin/chromium'
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']

const request = (method: string, path: string): string =>
  `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`

t.test('the API takes the IDs . and .. as %2E or %252E, and only there', async t => {
  const relay = await startRendezvous({ ids: ['.', '..', '...', 'a.b'], plugin: { admin: { port: 0, token: TOKEN } } })
  t.teardown(relay.close)
  const port = relay.app.rendezvous.adminAddress()!.port
  const json = async (method: string, path: string): Promise<{ status: number, body: any }> => {
    const answer = parse(await raw(port, request(method, path)))
    return { status: answer.status, body: JSON.parse(answer.body) }
  }
  t.same(await json('POST', '/api/ids/%2E/disconnect'), { status: 200, body: { id: '.', parked: 0, spliced: 0 } })
  t.same(await json('POST', '/api/ids/%2e%2E/disconnect'), { status: 200, body: { id: '..', parked: 0, spliced: 0 } })
  t.same(await json('POST', '/api/ids/%252E%252e/disconnect'), { status: 200, body: { id: '..', parked: 0, spliced: 0 } })
  t.same(await json('POST', '/api/ids/%252E%252E%252E/disconnect'), { status: 200, body: { id: '...', parked: 0, spliced: 0 } })
  t.equal((await json('POST', '/api/ids/%252E/rotate')).body.id, '.')
  for (const path of ['/api/ids/a%252Eb/disconnect', '/api/ids/%252Ex/disconnect', '/api/ids/x%252E/disconnect']) {
    t.equal((await json('POST', path)).status, 400, `${path}: %252E is a dot only as a whole segment of dots`)
  }
  t.same(await json('DELETE', '/api/ids/%252E'), { status: 200, body: { id: '.', removed: true } })
  t.same(await json('DELETE', '/api/ids/%2E%2E'), { status: 200, body: { id: '..', removed: true } })
  t.same((await relay.registry.list()).map(r => r.id).sort(), ['...', 'a.b'])
})

t.test('Chromium rotates, disconnects and removes the IDs . and .. from the page', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing` }, async t => {
  t.setTimeout(90_000)
  const relay = await startRendezvous({ ids: ['.', '..', 'hub-1'], plugin: { admin: { port: 0, token: TOKEN } } })
  t.teardown(relay.close)
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 15_000 })
  t.teardown(() => browser.close().catch(() => {}))
  const context = await browser.newContext({ bypassCSP: true })
  context.setDefaultTimeout(15_000)
  const page = await context.newPage()
  const problems: string[] = []
  page.on('pageerror', err => problems.push(err.message))
  page.on('dialog', dialog => { dialog.accept().catch(() => {}) })
  const asked: string[] = []
  page.on('request', r => { if (r.method() !== 'GET') asked.push(`${r.method()} ${new URL(r.url()).pathname}`) })

  await page.goto(adminUrl(relay, '/'), { waitUntil: 'load' })
  await page.fill('#token', TOKEN)
  await page.click('#login button')
  await page.waitForSelector('tr[data-id=".."]')

  const before = relay.registry.get('.')?.secret
  await page.click('tr[data-id="."] button:text("Rotate")')
  await page.waitForFunction("document.querySelector('#status').textContent === '. rotated'")
  t.not(relay.registry.get('.')?.secret, before, '. has a new secret')
  t.match(await page.textContent('#command'), / --id=\. --secret /)

  const parked = await relay.park('..')
  await untilParked(relay, 1)
  await page.click('tr[data-id=".."] button:text("Disconnect")')
  await page.waitForFunction("document.querySelector('#status').textContent.startsWith('.. disconnected (1 parked')")
  await parked.untilClosed()
  t.pass('.. was disconnected')

  for (const id of ['.', '..']) {
    await page.click(`tr[data-id="${id}"] button:text("Remove")`)
    await page.waitForFunction(`document.querySelector('#status').textContent === '${id} removed'`)
    t.equal(relay.registry.get(id), undefined, `${id} is removed`)
  }
  t.ok(relay.registry.get('hub-1'), 'nothing else was touched')
  t.same(asked, ['POST /api/ids/%252E/rotate', 'POST /api/ids/%252E%252E/disconnect', 'DELETE /api/ids/%252E', 'DELETE /api/ids/%252E%252E'])
  t.same(problems, [])
})
