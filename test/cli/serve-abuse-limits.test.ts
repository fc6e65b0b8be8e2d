import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildProblem, runCli, startCli } from '../helpers/cli'
import { basicExchange, bytesUntilClose, openWire, statusOf, tcpFrom, type WireClient } from '../helpers/wire'
import type { Socket } from 'node:net'

// The limits against ID enumeration and a waiting client's body are serve
// flags and config keys like every other limit, and a connection the
// per-address cap closes is named in the log.

function tempDir (t: { teardown: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'rendezvous-abuse-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

const problem = buildProblem(t)
if (problem !== undefined) {
  t.fail(problem)
} else {
  t.test('--unknown-id-failures and its cool-off, from a flag and from the config file', async t => {
    const dir = tempDir(t)
    const config = join(dir, 'serve.json')
    writeFileSync(config, JSON.stringify({ unknownIdFailuresCoolOff: 30, maxWaitBuffer: 1024 }))
    const proc = startCli(t, ['serve', '--no-tls', '--port', '0', '--data-dir', join(dir, 'data'), '--config', config, '--unknown-id-failures', '2'])
    const [, port] = await proc.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)\//)
    t.equal(statusOf(await basicExchange(Number(port), 'nobody-1')), 404)
    t.equal(statusOf(await basicExchange(Number(port), 'nobody-2')), 404)
    const cooled = await basicExchange(Number(port), 'nobody-3')
    t.equal(statusOf(cooled), 429, 'the third unknown ID from one address: the cool-off')
    const retryAfter = Number(/\r\nRetry-After: (\d+)\r\n/.exec(cooled)?.[1])
    t.ok(retryAfter > 20 && retryAfter <= 30, `Retry-After from the file's 30 s cool-off, not the default 60 (${retryAfter})`)
  })

  t.test('a connection closed by the per-address cap is logged once with its address; the rest are debug lines', async t => {
    const dir = tempDir(t)
    const proc = startCli(t, ['serve', '--no-tls', '--port', '0', '--data-dir', join(dir, 'data'), '--max-connections-per-address', '2'])
    const [, port] = await proc.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)\//)
    const held: WireClient[] = []
    t.teardown(() => { for (const w of held) w.destroy() })
    for (let i = 0; i < 2; i++) held.push(await openWire(Number(port), false))
    for (let i = 0; i < 3; i++) {
      const refused = await openWire(Number(port), false)
      await refused.untilClosed()
      t.equal(refused.received.length, 0, `connection ${i + 3}: closed at accept, without an answer`)
    }
    await proc.waitFor(/"outcome":"per_address_cap"/)
    // Let a second line arrive, if one were written, before counting.
    await new Promise(resolve => setTimeout(resolve, 300))
    const lines = proc.stdout().split('\n').filter(l => l.includes('"outcome":"per_address_cap"'))
    t.equal(lines.length, 1, 'one line at info for three refusals')
    t.match(JSON.parse(lines[0]!), { level: 30, address: '127.0.0.1', max: 2 })
  })

  t.test('maxConnections from the config file caps connections in all, whatever their address, and names the cap in the log', async t => {
    const dir = tempDir(t)
    const config = join(dir, 'serve.json')
    writeFileSync(config, JSON.stringify({ maxConnections: 2 }))
    const proc = startCli(t, ['serve', '--no-tls', '--port', '0', '--data-dir', join(dir, 'data'), '--config', config])
    const [, port] = await proc.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)\//)
    const held: Socket[] = []
    t.teardown(() => { for (const s of held) s.destroy() })
    for (const from of ['127.0.0.2', '127.0.0.3']) held.push(await tcpFrom(Number(port), from))
    const refused = await tcpFrom(Number(port), '127.0.0.4')
    t.equal(await bytesUntilClose(refused), 0, 'closed at accept, without an answer')
    const [line] = await proc.waitFor(/.*"outcome":"total_cap".*/)
    t.match(JSON.parse(line!), { level: 30, address: '127.0.0.4', max: 2 })
  })

  t.test('--help shows serve\'s own total cap and the IPv6 subnet; a subnet of 0 or past 128 is refused by name', async t => {
    const help = await runCli(t, ['serve', '--help'])
    t.match(help.stdout, /--max-connections N\s+open connections in all[^\n]*\(default 20000;/)
    t.match(help.stdout, /--ipv6-subnet BITS\s+[^\n]*\(default 64;/)
    for (const bits of ['0', '129']) {
      const refused = await runCli(t, ['serve', '--no-tls', '--port', '0', '--data-dir', join(tempDir(t), 'data'), '--ipv6-subnet', bits])
      t.equal(refused.code, 2)
      t.match(refused.stderr, /--ipv6-subnet/)
      t.equal(refused.stderr.trim().split('\n').length, 1, 'one line')
    }
  })

  t.test('--max-wait-buffer takes a positive number of bytes', async t => {
    const dir = tempDir(t)
    const refused = await runCli(t, ['serve', '--no-tls', '--port', '0', '--data-dir', join(dir, 'data'), '--max-wait-buffer', '0'])
    t.equal(refused.code, 2)
    t.match(refused.stderr, /--max-wait-buffer/)
    t.equal(refused.stderr.trim().split('\n').length, 1, 'one line')
  })
}
