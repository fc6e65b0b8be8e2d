import { existsSync } from 'node:fs'
import { chromium, type Page } from 'playwright-core'
import t from 'tap'
import { startRendezvous as startRelay, untilParked } from '../helpers/rendezvous'
import { adminUrl, TOKEN } from './helpers'

/*
 * The admin page in real Chromium: it refuses without the token, shows the
 * live table, and its add, rotate, disconnect and remove buttons act on the
 * relay. Code that runs in the page is written as strings, as in the e2e test.
 */

const CHROMIUM = process.env.RENDEZVOUS_CHROMIUM ?? '/usr/bin/chromium'
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'
]
const STEP_MS = 15_000

const cellText = (id: string, column: number): string =>
  `document.querySelector('tr[data-id="${id}"]')?.cells[${column}]?.textContent`

async function cellIs (page: Page, id: string, column: number, text: string): Promise<void> {
  await page.waitForFunction(`${cellText(id, column)} === ${JSON.stringify(text)}`)
}

async function login (page: Page, token: string): Promise<void> {
  await page.fill('#token', token)
  await page.click('#login button')
}

if (!existsSync(CHROMIUM)) {
  const message = `${CHROMIUM} is missing: install it (apt-get install -y chromium) to run the admin page test`
  if (process.env.CI === 'true') t.fail(message)
  else t.plan(0, message)
} else {
  t.setTimeout(90_000)

  t.test('Chromium drives the admin page', async t => {
    const relay = await startRelay({ plugin: { admin: { port: 0, token: TOKEN, publicUrl: 'https://relay.example:8443/' } } })
    t.teardown(relay.close)
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: STEP_MS })
    t.teardown(() => browser.close().catch(() => {}))
    // Playwright evaluates its wait predicates as strings, which the page's CSP forbids (test/admin/api.test.ts checks the CSP).
    const context = await browser.newContext({ bypassCSP: true })
    context.setDefaultTimeout(STEP_MS)
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: adminUrl(relay) })
    const page = await context.newPage()
    const problems: string[] = []
    page.on('pageerror', err => problems.push(`page error: ${err.message}`))
    page.on('dialog', dialog => { dialog.accept().catch(() => {}) })

    const apiCalls: string[] = []
    page.on('request', request => { if (new URL(request.url()).pathname.startsWith('/api/')) apiCalls.push(request.url()) })
    await page.goto(adminUrl(relay, '/'), { waitUntil: 'load' })
    t.equal(await page.title(), 'rendezvous admin')
    await page.waitForFunction("document.querySelector('#status').textContent === 'enter the admin token'")
    t.equal(await page.evaluate("document.querySelector('#status').className"), '', 'a prompt, not an error')
    t.equal(await page.evaluate('document.querySelectorAll("#ids tbody tr").length'), 0, 'no token, no table')
    await page.fill('#new-id', 'too-soon')
    await page.click('#add button')
    await page.waitForFunction("document.querySelector('#status').textContent === 'enter the admin token first'")
    await new Promise(resolve => setTimeout(resolve, 300))
    t.same(apiCalls, [], 'opening the page, or acting before the token is in, asks the API nothing (an empty bearer would count as a refused admin request)')
    t.notOk(relay.registry.get('too-soon'), 'nothing was added')
    await login(page, `${TOKEN}-wrong`)
    await page.waitForFunction("document.querySelector('#status').className === 'error'")
    t.equal(await page.evaluate('document.querySelectorAll("#ids tbody tr").length'), 0, 'a wrong token, no table')

    await login(page, TOKEN)
    await cellIs(page, 'hub-1', 2, '0')
    t.equal(await page.textContent('#status'), '', 'the error is gone')
    const hidden = await relay.park('hub-1')
    await cellIs(page, 'hub-1', 2, '1')
    t.pass('the table is live: a parked connection shows up')

    await page.fill('#new-id', 'web-1')
    await page.click('#add button')
    await page.waitForSelector('#result:not([hidden])')
    const command = await page.textContent('#command') ?? ''
    const secret = /--secret ([A-Z2-7]+) /.exec(command)?.[1] ?? ''
    t.equal(command, `rendezvous agent --server https://relay.example:8443/ --id=web-1 --secret ${secret} --to http://127.0.0.1:PORT`)
    t.equal(relay.registry.get('web-1')?.secret, secret, 'the command carries the registered secret')
    await cellIs(page, 'web-1', 2, '0')
    await page.click('#copy')
    await page.waitForFunction("document.querySelector('#status').textContent === 'command copied'")
    t.equal(await page.evaluate('navigator.clipboard.readText()'), command, 'the command is on the clipboard')

    // A refused action's message stays through the refreshes that follow, until the next action.
    await page.fill('#new-id', 'HUB-1')
    await page.click('#add button')
    await page.waitForFunction("document.querySelector('#status').className === 'error'")
    const duplicate = await page.textContent('#status')
    t.match(duplicate, /The ID hub-1 is already provisioned/)
    for (let i = 0; i < 3; i++) {
      await page.waitForResponse(res => res.url().endsWith('/api/ids') && res.request().method() === 'GET')
      // The page handles the answer after this resolves; one more round trip lets it.
      await page.evaluate('new Promise(resolve => setTimeout(resolve, 50))')
    }
    t.equal(await page.textContent('#status'), duplicate, 'the error outlives three refreshes')
    t.equal(await page.getAttribute('#status', 'class'), 'error')
    t.equal(await page.inputValue('#new-id'), 'HUB-1', 'and the refused input stays, to be corrected')
    await page.fill('#new-id', 'web-2')
    await page.click('#add button')
    await page.waitForFunction("document.querySelector('#status').textContent === 'web-2 added'")
    t.equal(await page.getAttribute('#status', 'class'), '', 'a successful action replaces the error')
    await page.fill('#new-id', 'web-2')
    await page.click('#add button')
    await page.waitForFunction("document.querySelector('#status').className === 'error'")
    await page.click('#copy')
    await page.waitForFunction("document.querySelector('#status').textContent === 'command copied'")
    t.pass('any next action replaces it too')

    const parkedWeb = await relay.park('web-1', secret)
    await untilParked(relay, 2)
    await cellIs(page, 'web-1', 2, '1')
    await page.click('tr[data-id="web-1"] button:text("Rotate")')
    // The command shows web-2's since it was added: wait for web-1's new one, not for any other.
    await page.waitForFunction(`(text => text.includes(' --id=web-1 ') && text !== ${JSON.stringify(command)})(document.querySelector('#command').textContent)`)
    const rotated = /--secret ([A-Z2-7]+) /.exec(await page.textContent('#command') ?? '')?.[1]
    t.equal(relay.registry.get('web-1')?.secret, rotated)
    await page.waitForFunction(`/^\\d{4}-/.test(${cellText('web-1', 5)})`)
    t.pass('the old secret\'s overlap shows in the table')

    await page.click('tr[data-id="hub-1"] button:text("Disconnect")')
    await hidden.untilClosed()
    await cellIs(page, 'hub-1', 2, '0')
    t.equal(relay.registry.get('hub-1')?.id, 'hub-1', 'disconnect keeps the ID')

    await page.click('tr[data-id="web-1"] button:text("Remove")')
    await page.waitForFunction('!document.querySelector(\'tr[data-id="web-1"]\')')
    await parkedWeb.untilClosed()
    t.equal(relay.registry.get('web-1'), undefined)
    t.same(problems, [])
  })
}
