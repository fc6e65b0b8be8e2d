import { existsSync } from 'node:fs'
import { chromium, type Browser, type Page } from 'playwright-core'
import t from 'tap'
import { startDemo } from '../../lib/demo/demo'
import { WS_GREETING } from '../../lib/demo/site'

/*
 * A real browser as the mobile client: headless Chromium answers the Digest
 * challenge with the ID, loads the demo's hidden page through the rendezvous,
 * runs its script, shows its image, posts its form, and talks over a
 * WebSocket opened with ?rendezvous=ID. Everything is asserted in the DOM.
 *
 * Code that runs in the page is written as strings: the project compiles
 * without the DOM library, and tsx would wrap functions in helpers that do
 * not exist in the page.
 */

// CI installs Debian's chromium; the variable is for machines that keep it elsewhere.
const CHROMIUM = process.env.RENDEZVOUS_CHROMIUM ?? '/usr/bin/chromium'
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'
]
const STEP_MS = 15_000

/** Waits until the page's `#list li` texts include `line`. */
async function listed (page: Page, list: string, line: string): Promise<void> {
  await page.waitForFunction(`[...document.querySelectorAll(${JSON.stringify(`${list} li`)})].some(li => li.textContent === ${JSON.stringify(line)})`)
}

if (!existsSync(CHROMIUM)) {
  const message = `${CHROMIUM} is missing: install it (apt-get install -y chromium) to run the browser test`
  if (process.env.CI === 'true') t.fail(message)
  else t.plan(0, message)
} else {
  t.setTimeout(60_000)

  t.test('Chromium loads the hidden page through the rendezvous', async t => {
    const demo = await startDemo({ port: 0, dataDir: t.testdir(), logLevel: 'silent' })
    t.teardown(() => demo.close())
    const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: STEP_MS })
    // Registered after the demo's, so it runs first: tap runs teardowns last in, first out.
    t.teardown(() => browser.close().catch(() => {}))

    const context = await browser.newContext({
      httpCredentials: { username: demo.id, password: 'x' },
      ignoreHTTPSErrors: true
    })
    context.setDefaultTimeout(STEP_MS)
    const page = await context.newPage()
    const problems: string[] = []
    page.on('pageerror', err => problems.push(`page error: ${err.message}`))
    page.on('console', msg => { if (msg.type() === 'error') problems.push(`console: ${msg.text()}`) })
    page.on('requestfailed', req => problems.push(`request failed: ${req.url()} ${req.failure()?.errorText ?? ''}`))
    // A 401 is the challenge the browser answers; anything else of 400 and above is a fault.
    page.on('response', res => { if (res.status() >= 400 && res.status() !== 401) problems.push(`${res.status()} for ${res.url()}`) })

    const response = await page.goto(demo.url, { waitUntil: 'load' })
    t.equal(response?.status(), 200, 'the page itself')
    t.equal(await page.title(), 'A hidden server, reached through the rendezvous')

    await t.test('app.js ran', async t => {
      await page.waitForFunction('document.getElementById("script-status").textContent.startsWith("app.js ran")')
      t.equal(await page.textContent('#script-status'), 'app.js ran: it came through the rendezvous too.')
    })

    await t.test('the logo loaded', async t => {
      await page.waitForFunction('document.getElementById("logo").complete')
      const size = await page.evaluate('({ width: document.getElementById("logo").naturalWidth, height: document.getElementById("logo").naturalHeight })') as { width: number, height: number }
      t.ok(size.width > 0, `naturalWidth ${size.width}`)
      t.ok(size.height > 0, `naturalHeight ${size.height}`)
    })

    await t.test('the page\'s WebSocket via ?rendezvous=ID talks both ways', async t => {
      const wsUrl = `wss://127.0.0.1:${demo.port}/ws?rendezvous=${encodeURIComponent(demo.id)}`
      t.equal(await page.textContent('#ws-url'), wsUrl, 'the page names the ID in the query')
      await page.waitForFunction('document.getElementById("ws-status").textContent === "open"')
      await listed(page, '#ws-log', `received: ${WS_GREETING}`)
      await listed(page, '#ws-log', 'received: hello from the browser')
      t.pass('the hidden server spoke first, and echoed what the page sent on open')

      const message = `typed ${Date.now()} ✓`
      await page.fill('#ws-input', message)
      await page.click('#ws-send')
      await listed(page, '#ws-log', `sent: ${message}`)
      await listed(page, '#ws-log', `received: ${message}`)
      t.pass('a message typed into the page came back')
      t.equal(await page.textContent('#ws-status'), 'open', 'still open')
      t.equal(demo.site.stats.websockets, 1, 'the hidden server holds one WebSocket')
    })

    await t.test('the form POST round-trips', async t => {
      const value = 'from Chromium <&> é'
      await page.fill('#message', value)
      const [result] = await Promise.all([
        page.waitForResponse(res => new URL(res.url()).pathname === '/submit'),
        page.click('#submit')
      ])
      await page.waitForURL(`${demo.url}submit`, { waitUntil: 'load' })
      t.equal(result.status(), 200)
      t.equal(result.request().method(), 'POST')
      t.equal(await page.textContent('#value'), value, 'the result page shows what was submitted')
      t.equal(await page.title(), 'Form received')
    })

    t.same(problems, [], 'no script errors or failed requests')
    await context.close()

    // Chromium puts its cached Digest credentials on the page's WebSocket handshake too, naming the
    // same ID as the query. A context that never authenticated shows that the query alone is enough.
    await t.test('a WebSocket named only by ?rendezvous=ID, from a browser without credentials', async t => {
      const bare = await browser.newContext({ ignoreHTTPSErrors: true })
      t.teardown(() => bare.close())
      bare.setDefaultTimeout(STEP_MS)
      const other = await bare.newPage()
      const cdp = await bare.newCDPSession(other)
      await cdp.send('Network.enable')
      const handshakes: Array<Record<string, string>> = []
      cdp.on('Network.webSocketWillSendHandshakeRequest', event => { handshakes.push(event.request.headers) })

      // Upper case: IDs match case-insensitively, on this path too.
      const wsUrl = `wss://127.0.0.1:${demo.port}/ws?rendezvous=${encodeURIComponent(demo.id.toUpperCase())}`
      await other.setContent('<ul id="log"></ul>')
      await other.evaluate(`(() => {
        const log = document.getElementById('log')
        const line = text => { const li = document.createElement('li'); li.textContent = text; log.appendChild(li) }
        const ws = new WebSocket(${JSON.stringify(wsUrl)})
        ws.onopen = () => { line('open'); ws.send('query only') }
        ws.onmessage = event => line('received: ' + event.data)
        ws.onclose = event => line('closed ' + event.code)
      })()`)
      await other.waitForFunction('document.querySelectorAll("#log li").length >= 3')
      t.same(await other.evaluate('[...document.querySelectorAll("#log li")].map(li => li.textContent)'),
        ['open', `received: ${WS_GREETING}`, 'received: query only'], 'greeted, then echoed, in the DOM')
      t.equal(handshakes.length, 1, 'one handshake')
      t.notOk(Object.keys(handshakes[0] ?? {}).some(name => name.toLowerCase() === 'authorization'), 'no Authorization on it')
    })
  })
}
