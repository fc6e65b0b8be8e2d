import { mkdtempSync, readFileSync, rmSync, writeSync as fsWriteSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { FileRegistry } from '../../lib/index'
import { FileReplayCache } from '../../lib/stores/file-replay-cache'
import { parseJournal } from '../../lib/stores/replay-journal'
import { createV1Token } from '../../lib/tokens/v1'
import { buildProblem, CLI_MAIN, runCli, spawnProc } from '../helpers/cli'
import { SECRET } from '../helpers/fixtures'
import { startRendezvous as startRelay } from '../helpers/rendezvous'
import { connectOnce } from '../helpers/wire'

// While the replay journal cannot be written every CONNECT with a token gets
// 503; /readyz says so (replay_journal_failing), and stops saying so once a
// write succeeds again, the probe's own write included.

type Test = Parameters<Parameters<typeof t.test>[0]>[0]

function tempDir (t: Test): string {
  const root = mkdtempSync(join(tmpdir(), 'rv-journal-ready-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  return join(root, 'data')
}

async function readyz (port: number): Promise<{ status: number, body: unknown }> {
  const res = await fetch(`http://127.0.0.1:${port}/readyz`)
  return { status: res.status, body: await res.json() }
}

const park = connectOnce

const FAILING = { status: 503, body: { status: 'not ready', reasons: ['replay_journal_failing'] } }

t.test('readyz says replay_journal_failing while the journal cannot be written, and is ready again once a write succeeds', async t => {
  const dataDir = tempDir(t)
  const registry = new FileRegistry({ dataDir })
  await registry.add({ id: 'hub-1', secret: SECRET })
  let full = false
  // A disk that fills up: the write that meets the end stores four bytes, every later one fails.
  const writeSync = (fd: number, buffer: Buffer, offset: number, length: number): number => {
    if (!full) return fsWriteSync(fd, buffer, offset, length)
    if (offset === 0 && length > 4) return fsWriteSync(fd, buffer, offset, 4)
    throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' })
  }
  const logged: string[] = []
  const log = { error: (_: object, msg: string) => { logged.push(msg) }, warn: (_: object, msg: string) => { logged.push(msg) }, info: (_: object, msg: string) => { logged.push(msg) } }
  const journal = await FileReplayCache.open({ dataDir, writeSync, log })
  const relay = await startRelay({ plugin: { healthPath: '/healthz', readyPath: '/readyz', registry, replayCache: journal } })
  t.teardown(async () => { await relay.close(); await registry.close(); await journal.close() })

  t.equal((await park(relay.port, 'hub-1', createV1Token('hub-1', SECRET))).status, 200)
  t.same(await readyz(relay.port), { status: 200, body: { status: 'ready' } })

  full = true
  const refused = await park(relay.port, 'hub-1', createV1Token('hub-1', SECRET))
  t.match(refused.text, /^HTTP\/1\.1 503 /, 'the CONNECT gets 503')
  t.same(await readyz(relay.port), FAILING)
  t.same(await readyz(relay.port), FAILING, 'stays so: the probe\'s own write fails too')
  t.equal((await fetch(`http://127.0.0.1:${relay.port}/healthz`)).status, 200, 'alive all the same')

  full = false
  // No CONNECT in between: readiness alone finds the disk repaired, as it must once the node is out of rotation.
  t.same(await readyz(relay.port), { status: 200, body: { status: 'ready' } })
  t.same(logged, [
    'the replay journal cannot be written; CONNECTs are refused with 503 until it can',
    'the replay journal can be written again; tokens are accepted again'
  ], 'the failure and its end, once each')
  const after = createV1Token('hub-1', SECRET)
  t.equal((await park(relay.port, 'hub-1', after)).status, 200, 'tokens are accepted again')

  // The probe's empty line ended the torn one: only that line is lost, the entry after it reads back.
  const text = readFileSync(journal.file, 'utf8')
  const parsed = parseJournal(text)
  t.equal(parsed.bad, 1, 'one torn line')
  t.equal(parsed.entries.length, 2, 'the entries before and after the failure')
  t.match(text, /\n[^\n]{4}\n\d+ "[^\n]+"\n$/, 'the torn four bytes, ended, then a whole line')
})

t.test('serve under `ulimit -f`: once the journal is full, readyz says replay_journal_failing', async t => {
  const problem = buildProblem(t)
  if (problem !== undefined) return t.fail(problem)
  const dataDir = tempDir(t)
  const added = await runCli(t, ['ids', 'add', '--data-dir', dataDir, '--json'])
  const { id, secret } = JSON.parse(added.stdout) as { id: string, secret: string }
  const args = [CLI_MAIN, 'serve', '--port', '0', '--no-tls', '--data-dir', dataDir]
  // Files of 1 KiB at most (512-byte blocks): a dozen keys fit, then every write fails with EFBIG.
  const proc = spawnProc(t, 'serve (ulimit -f 2)', '/bin/sh', ['-c', 'ulimit -f 2 && exec "$0" "$@"', process.execPath, ...args], { env: { DEBUG: '' }, watchdog: false })
  const port = Number((await proc.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)\//, 30_000))[1])
  t.equal((await readyz(port)).status, 200)
  let status = 200
  for (let i = 0; i < 60 && status === 200; i++) status = (await park(port, id, createV1Token(id, secret))).status
  t.equal(status, 503, 'a CONNECT is refused once the journal is full')
  t.same(await readyz(port), FAILING)
  t.equal((await park(port, id, createV1Token(id, secret))).status, 503, 'as the next one is')
  t.same(await readyz(port), FAILING, 'still not ready')
  t.same(await proc.stop(), { code: 0, signal: null })
})
