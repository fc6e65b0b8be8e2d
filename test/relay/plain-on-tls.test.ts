import { execFile } from 'node:child_process'
import { connect as tlsConnect } from 'node:tls'
import { Writable } from 'node:stream'
import t from 'tap'
import { clientErrorHandler } from '../../lib/index'
import { startRendezvous } from '../helpers/rendezvous'
import { openWire, statusOf } from '../helpers/wire'

// A hidden server or a client set up with http:// for a TLS relay is told
// so in plain HTTP, as nginx does, instead of a close without a word.

async function curl (args: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  return await new Promise(resolve => {
    execFile('curl', ['--silent', '--show-error', '--max-time', '10', ...args], (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : Number((err as { code?: number }).code ?? 1), stdout, stderr })
    })
  })
}

// Fastify's own clientErrorHandler, and the one serve uses, which the plugin exports.
for (const handler of ['fastify', 'plugin'] as const) {
  t.test(`plain HTTP to the TLS port gets a 400 that says to use https, then a close; counted and logged (${handler}'s clientErrorHandler)`, async t => {
    let raw = ''
    const stream = new Writable({ write (chunk, _e, cb) { raw += String(chunk); cb() } })
    const relay = await startRendezvous({ tls: true, fastify: { logger: { level: 'info', stream }, ...(handler === 'plugin' ? { clientErrorHandler } : {}) } })
    t.teardown(relay.close)

    for (const [side, head] of [
      ['hidden', `CONNECT uuid:hub-1?response=x HTTP/1.1\r\nHost: 127.0.0.1:${relay.port}\r\n\r\n`],
      ['mobile', 'GET /page HTTP/1.1\r\nHost: h\r\n\r\n']
    ] as const) {
    // A plain TCP connection to the TLS port: what an http:// URL opens.
      const wire = await openWire(relay.port, false)
      wire.write(head)
      await wire.untilClosed(5000)
      t.equal(statusOf(wire.text), 400, `${side}: 400`)
      t.match(wire.text, /^HTTP\/1\.1 400 Bad Request\r\n/, `${side}: a status line with its reason phrase`)
      t.match(wire.text, /\r\nConnection: close\r\n/, `${side}: Connection: close`)
      t.ok(wire.text.endsWith('\r\n\r\nthis port speaks TLS: use https://\n'), `${side}: the body says why`)
      t.ok(wire.ended, `${side}: an orderly close (FIN), not a reset`)
    }

    const viaCurl = await curl(['--include', `http://127.0.0.1:${relay.port}/page`])
    t.equal(viaCurl.code, 0, `curl read an answer: ${viaCurl.stderr}`)
    t.match(viaCurl.stdout, /^HTTP\/1\.1 400 Bad Request\r\n[^]*this port speaks TLS: use https:\/\/\n$/, 'curl with http:// sees the 400 and why')

    // Garbage that is neither TLS nor an HTTP request OpenSSL can name: closed, as any failed handshake.
    const junk = await openWire(relay.port, false)
    junk.write('\x00\x01\x02\x03\x04\x05\x06\x07')
    await junk.untilClosed(5000)
    t.equal(junk.text, '', 'no answer to bytes that are not HTTP')
    // A client that refuses the certificate ends the handshake with an alert.
    const refused = await new Promise<string>(resolve => {
      const s = tlsConnect({ port: relay.port, host: '127.0.0.1', servername: 'localhost' })
      s.on('error', err => { resolve((err as NodeJS.ErrnoException).code ?? String(err)) })
    })
    t.equal(refused, 'DEPTH_ZERO_SELF_SIGNED_CERT', 'the client refused the certificate')

    const text = await relay.app.rendezvous.metrics!.metrics()
    t.match(text, /rendezvous_refusals_total\{side="hidden",reason="plain_http"\} 1\n/)
    t.match(text, /rendezvous_refusals_total\{side="mobile",reason="plain_http"\} 2\n/)
    const lines = raw.split('\n').filter(l => l.includes('plain HTTP refused on the TLS port')).map(l => JSON.parse(l) as Record<string, unknown>)
    t.same(lines.map(l => [l.level, l.plugin, l.side, l.status, l.answered]), [
      [30, 'rendezvous', 'hidden', 400, true],
      [30, 'rendezvous', 'mobile', 400, true],
      [30, 'rendezvous', 'mobile', 400, true]
    ], 'one info line each')
    t.notMatch(raw, /response=x/, 'nothing of the refused bytes is logged')
    // A failed TLS handshake reaches the HTTP server's clientError too: it is no head the HTTP parser refused.
    t.notMatch(text, /reason="malformed_head"/, 'failed handshakes are not counted as malformed heads')
    t.notMatch(raw, /request refused by the HTTP parser/, 'nor logged as such')
  })
}

t.test('a relay without TLS adds no listener for it', async t => {
  const relay = await startRendezvous({ tls: false })
  t.teardown(relay.close)
  t.equal(relay.app.server.listenerCount('tlsClientError'), 0)
})

t.test('the listeners go with the plugin', async t => {
  let before = -1
  const relay = await startRendezvous({ tls: true, before: app => { before = app.server.listenerCount('tlsClientError') } })
  // This answer's, the one that counts refused handshakes, and the one that closes a connection whose handshake failed or timed out.
  t.equal(relay.app.server.listenerCount('tlsClientError'), before + 3, 'three listeners of its own')
  await relay.close()
  t.equal(relay.app.server.listenerCount('tlsClientError'), before, 'and none left after close')
})
