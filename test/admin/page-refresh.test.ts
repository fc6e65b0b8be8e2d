import { existsSync } from 'node:fs'
import { chromium, type Page } from 'playwright-core'
import { Registry } from 'prom-client'
import t from 'tap'
import { startRendezvous } from '../helpers/rendezvous'
import { TOKEN } from './helpers'
import { adminCounts } from './raw'

/*
 * The admin page in real Chromium, across refreshes: it kept refreshing only
 * while refreshes succeeded (one failure stopped it for good, and emptied the
 * table), and it rebuilt the table every second, which lost clicks on its
 * buttons and the text selected in it.
 */

const CHROMIUM = process.env.RENDEZVOUS_CHROMIUM ?? '/usr/bin/chromium'
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
const IDS = ['a1', 'a2', 'a3', 'b1']
const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))
const rowCount = async (page: Page): Promise<number> => await page.evaluate('document.querySelectorAll("#ids tbody tr").length')
const status = async (page: Page): Promise<string> => await page.evaluate("document.querySelector('#status').className + ':' + document.querySelector('#status').textContent")

async function browserPage (t: { teardown: (fn: () => unknown) => void }, port: number): Promise<{ page: Page, listed: () => number }> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 15_000 })
  t.teardown(() => browser.close().catch(() => {}))
  const context = await browser.newContext({ bypassCSP: true })
  context.setDefaultTimeout(15_000)
  const page = await context.newPage()
  let listed = 0
  page.on('request', request => { if (new URL(request.url()).pathname === '/api/ids') listed++ })
  await page.goto(`http://127.0.0.1:${port}/`)
  await page.fill('#token', TOKEN)
  await page.click('#login button')
  await page.waitForFunction(`document.querySelectorAll("#ids tbody tr").length === ${IDS.length}`)
  return { page, listed: () => listed }
}

if (!existsSync(CHROMIUM)) {
  if (process.env.CI === 'true') t.fail(`${CHROMIUM} is missing`)
  else t.plan(0, `${CHROMIUM} is missing: install it (apt-get install -y chromium) to run the admin page test`)
} else {
  t.setTimeout(120_000)

  t.test('a failed refresh keeps the table, shows the error, and the page recovers by itself', async t => {
    let relay = await startRendezvous({ ids: IDS, plugin: { admin: { port: 0, token: TOKEN } } })
    t.teardown(async () => await relay.close())
    const port = relay.app.rendezvous.adminAddress()!.port
    const { page, listed } = await browserPage(t, port)

    // The API answers 500 for a while: a registry that fails.
    const list = relay.registry.list.bind(relay.registry)
    relay.registry.list = async () => { throw new Error('registry down') }
    await page.waitForFunction("document.querySelector('#status').className === 'error'")
    const before = listed()
    await sleep(2500)
    t.ok(listed() - before >= 2, 'it keeps asking while the API fails')
    t.equal(await rowCount(page), IDS.length, 'the last table stays')
    t.match(await status(page), /^error:registry down$/, 'and the error shows')
    relay.registry.list = list
    await page.waitForFunction("document.querySelector('#status').textContent === ''")
    t.equal(await status(page), ':', 'the error goes when a refresh succeeds')

    // The relay stops (fetch fails) and starts again on the same admin port.
    await relay.close()
    await page.waitForFunction("document.querySelector('#status').className === 'error'")
    await sleep(1500)
    t.equal(await rowCount(page), IDS.length, 'the last table stays while the listener is down')
    relay = await startRendezvous({ ids: [...IDS, 'c1'], plugin: { admin: { port, token: TOKEN } } })
    await page.waitForFunction(`document.querySelectorAll("#ids tbody tr").length === ${IDS.length + 1}`)
    await page.waitForFunction("document.querySelector('#status').textContent === ''")
    t.pass('back by itself once the listener is: the new ID shows and the error has gone')
  })

  t.test('clicks on a button and a selection in a cell survive the refreshes', async t => {
    const metrics = new Registry()
    const relay = await startRendezvous({ ids: IDS, plugin: { metrics, admin: { port: 0, token: TOKEN } } })
    t.teardown(relay.close)
    const { page } = await browserPage(t, relay.app.rendezvous.adminAddress()!.port)

    await page.evaluate(`(() => {
      const range = document.createRange()
      range.selectNodeContents(document.querySelector('#ids tbody tr[data-id="a2"] td'))
      getSelection().removeAllRanges()
      getSelection().addRange(range)
    })()`)
    // A cell that changes, next to it, is rewritten meanwhile.
    const hidden = await relay.park('a2')
    await page.waitForFunction('document.querySelector(\'tr[data-id="a2"]\').cells[2].textContent === "1"')
    await sleep(1500)
    t.equal(await page.evaluate('getSelection().toString()'), 'a2', 'the selection is still there after refreshes')
    hidden.socket.destroy()

    const clicks = 20
    for (let i = 0; i < clicks; i++) {
      const box = (await (await page.$('#ids tbody tr[data-id="b1"] button:has-text("Disconnect")'))!.boundingBox())!
      await page.mouse.move(box.x + 5, box.y + 5)
      await page.mouse.down()
      await sleep(120)
      await page.mouse.up()
      await sleep(200 + Math.random() * 800)
    }
    await sleep(500)
    t.equal((await adminCounts(metrics))['disconnect 200'], clicks, 'every click reached the API')
  })
}
