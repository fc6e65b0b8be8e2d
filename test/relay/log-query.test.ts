import t from 'tap'
import { createV1Token } from '../../lib/tokens/v1'
import { buildProblem, servePlainWithId } from '../helpers/cli'
import { startRendezvous, untilParked } from '../helpers/rendezvous'
import { openWire, relayOnce, statusOf } from '../helpers/wire'
import { until } from '../helpers/until'
import { capture } from '../admin/raw'

/*
 * Log lines name a request by its path, never its query: a query can carry
 * a token (?access_token=), or in ?rendezvous= an app's key that is no ID.
 */

const UNKNOWN_NAME = 'my-api-key-UNK1'
const QUERY_TOKENS = ['LEAKQ1', 'LEAKQ2', 'LEAKQ3', UNKNOWN_NAME]

async function exchange (open: () => Promise<Awaited<ReturnType<typeof openWire>>>, head: string): Promise<number | undefined> {
  const wire = await open()
  wire.write(head)
  await wire.untilText('\r\n\r\n')
  wire.destroy()
  return statusOf(wire.text)
}

t.test('the plugin\'s own lines carry the path of a relayed, refused or challenged request, not its query', async t => {
  const log = capture()
  const relay = await startRendezvous({ fastify: { logger: { level: 'trace', stream: log.stream } } })
  t.teardown(relay.close)
  const hidden = await relay.park('hub-1')
  await untilParked(relay, 1)
  const client = await relay.open()
  await relayOnce(client, hidden, 'GET /page?access_token=LEAKQ1 HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="hub-1"\r\n\r\n', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok', 'ok')
  client.destroy()
  hidden.destroy()
  await until(() => relay.app.rendezvous.stats().spliced === 0)
  t.equal(await exchange(relay.open, `GET /chat?rendezvous=${UNKNOWN_NAME} HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`), 404)
  t.equal(await exchange(relay.open, 'GET /x?access_token=LEAKQ2 HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="hub-1"\r\n\r\n'), 503, 'nothing parked: a refusal after the wait')
  const mine = (log.lines() as Array<{ side?: string, url?: string, msg: string }>).filter(l => l.side === 'mobile')
  t.same([...new Set(mine.map(l => l.url))].sort(), ['/chat', '/page', '/x'], 'each request is named by its path')
  for (const leak of QUERY_TOKENS) t.notOk(mine.some(l => JSON.stringify(l).includes(leak)), `no ${leak} in the plugin's lines`)
})

const problem = buildProblem(t)
if (problem !== undefined) {
  t.fail(problem)
} else {
  t.test('serve at trace level writes no query, in its own lines or in Fastify\'s request lines', async t => {
    const { secret, port, serve } = await servePlainWithId(t, 'hub-q', ['--log-level', 'trace'])
    const open = async (): Promise<Awaited<ReturnType<typeof openWire>>> => await openWire(port, false)
    const hidden = await open()
    hidden.write(`CONNECT uuid:hub-q?response=${createV1Token('hub-q', secret)} HTTP/1.1\r\nHost: h\r\n\r\n`)
    await hidden.untilText('\r\n\r\n')
    const client = await open()
    hidden.received = Buffer.alloc(0)
    await relayOnce(client, hidden, 'GET /page?access_token=LEAKQ1 HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="hub-q"\r\n\r\n', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok', 'ok')
    client.destroy()
    hidden.destroy()
    t.equal(await exchange(open, `GET /chat?rendezvous=${UNKNOWN_NAME} HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`), 404)
    t.equal(await exchange(open, 'GET /nothing?access_token=LEAKQ3 HTTP/1.1\r\nHost: h\r\n\r\n'), 401)
    await serve.waitFor(/"req":\{"method":"GET","url":"\/nothing"/)
    await serve.waitFor(/"url":"\/chat"/)
    for (const leak of QUERY_TOKENS) t.notOk(serve.stdout().includes(leak), `no ${leak} in serve's output`)
  })
}
