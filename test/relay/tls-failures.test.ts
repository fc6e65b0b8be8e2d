import t from 'tap'
import { connect as netConnect } from 'node:net'
import { Writable } from 'node:stream'
import { connect as tlsConnect } from 'node:tls'
import { startRendezvous } from '../helpers/rendezvous'
import { until } from '../helpers/until'

interface Line { level: number, msg: string, reason?: string, code?: string, address?: string }

/*
 * A client too old for TLS 1.2 (a phone or hub from before it), or one with
 * garbage where a handshake should be, used to fail without a log line or a
 * count: an operator saw nothing. Now each refused handshake is counted by
 * reason, and said once a minute per reason.
 */
t.test('refused TLS handshakes are counted by reason and said once a minute each; a peer that just leaves is not', async t => {
  const lines: Line[] = []
  const stream = new Writable({ write (chunk, _enc, cb) { for (const l of String(chunk).split('\n')) if (l !== '') lines.push(JSON.parse(l) as Line); cb() } })
  const relay = await startRendezvous({ tls: true, plugin: { handshakeTimeout: 300 }, fastify: { logger: { level: 'debug', stream } } })
  t.teardown(relay.close)
  const refused = async (): Promise<string> => (await relay.app.rendezvous.metrics!.metrics()).split('\n').filter(l => l.startsWith('rendezvous_connections_refused_total{')).join('\n')

  const oldClient = async (): Promise<void> => await new Promise(resolve => {
    const c = tlsConnect({ port: relay.port, host: '127.0.0.1', minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0', rejectUnauthorized: false })
    c.on('error', () => resolve())
    c.on('close', () => resolve())
  })
  await oldClient()
  await oldClient()
  const garbage = netConnect(relay.port, '127.0.0.1', () => { garbage.write('\x16\x03\x01\x00\x05garbage that is no ClientHello') })
  garbage.on('error', () => {})
  const silent = netConnect(relay.port, '127.0.0.1')
  silent.on('error', () => {})
  const leaver = netConnect(relay.port, '127.0.0.1', () => { leaver.destroy() })
  await until(async () => /reason="tls_timeout"\} 1/.test(await refused()), 3000, 'the silent one closed at handshakeTimeout')
  await until(async () => /reason="tls_failed"\} 1/.test(await refused()), 3000, 'the garbage refused')
  garbage.destroy()
  silent.destroy()

  t.same((await refused()).split('\n').sort(), [
    'rendezvous_connections_refused_total{reason="tls_failed"} 1',
    'rendezvous_connections_refused_total{reason="tls_timeout"} 1',
    'rendezvous_connections_refused_total{reason="tls_version"} 2'
  ], 'by reason; the peer that left is none of them')
  const said = lines.filter(l => l.reason?.startsWith('tls_') === true).map(l => [l.level, l.reason, l.address]).sort()
  t.same(said, [[20, 'tls_version', '127.0.0.1'], [30, 'tls_failed', '127.0.0.1'], [30, 'tls_timeout', '127.0.0.1'], [30, 'tls_version', '127.0.0.1']], 'one info line per reason, the second old client at debug')
  t.match(lines.find(l => l.reason === 'tls_version')?.msg, /older than 1\.2/)
})
