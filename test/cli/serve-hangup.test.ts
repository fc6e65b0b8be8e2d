import t from 'tap'
import { createV1Token } from '../../lib/tokens/v1'
import { buildProblem, servePlainWithId } from '../helpers/cli'
import { openWire, statusOf } from '../helpers/wire'

// A relay with no certificate files to reload (--no-tls) once died of SIGHUP, Node's default,
// cutting its parked and spliced connections without a log line: `systemctl reload` took it down.
const problem = buildProblem(t)
if (problem !== undefined) {
  t.fail(problem)
} else {
  t.test('serve --no-tls outlives SIGHUP, with its parked and spliced connections', async t => {
    const { secret, port, serve } = await servePlainWithId(t, 'hub-hup')

    const park = async (): Promise<Awaited<ReturnType<typeof openWire>>> => {
      const hidden = await openWire(port, false)
      hidden.write(`CONNECT uuid:hub-hup?response=${createV1Token('hub-hup', secret)} HTTP/1.1\r\nHost: h\r\n\r\n`)
      await hidden.untilText('HTTP/1.1 200 OK\r\n\r\n')
      hidden.drain()
      return hidden
    }
    const parked = await park()
    // Handed out newest first: this one takes the first client.
    const spliced = await park()
    const client = await openWire(port, false)
    client.write('GET /one HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="hub-hup"\r\n\r\n')
    await spliced.untilText('\r\n\r\n')

    serve.child.kill('SIGHUP')
    await serve.waitFor(/SIGHUP: nothing to reload/, 5000)
    await new Promise(resolve => setTimeout(resolve, 300))
    t.equal(serve.child.exitCode, null, 'still running')
    t.equal(serve.child.signalCode, null, 'not killed by the signal')
    t.notOk(spliced.closed || client.closed || parked.closed, 'no connection was cut')

    spliced.write('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none')
    await client.untilText('one')
    t.equal(statusOf(client.text), 200, 'the spliced pair goes on relaying')
    const next = await openWire(port, false)
    next.write('GET /two HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="hub-hup"\r\n\r\n')
    await parked.untilText('GET /two HTTP/1.1\r\n')
    parked.write('HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n')
    await next.untilText('204 No Content')
    for (const wire of [spliced, parked, client, next]) wire.destroy()
    t.equal((await serve.stop('SIGTERM')).code, 0, 'and ends cleanly on SIGTERM')
  })
}
