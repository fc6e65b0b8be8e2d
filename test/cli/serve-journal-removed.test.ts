import { readdirSync, rmSync, statSync, unlinkSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { createV1Token } from '../../lib/tokens/v1'
import { buildProblem, runCli } from '../helpers/cli'
import { until } from '../helpers/until'
import { connectOnce } from '../helpers/wire'
import { addId } from '../helpers/e2e'
import { newDataDir, serveForReplay } from '../helpers/replay-serve'

// A replay journal removed while serve runs (the file, or the whole data dir) is written again from memory:
// a token accepted before or after the removal stays refused after a SIGKILL and a restart.

type Test = Parameters<Parameters<typeof t.test>[0]>[0]

const RECREATED = 'the replay journal was removed while the server ran; it was recreated from memory with every token still inside its window'

const journals = (dataDir: string): string[] => readdirSync(dataDir).filter(name => name.endsWith('.journal'))

async function refusedAfterRestart (t: Test, dataDir: string, id: string, secret: string, tokens: string[]): Promise<void> {
  const second = await serveForReplay(t, dataDir)
  for (const [i, token] of tokens.entries()) t.equal((await connectOnce(second.port, id, token)).status, 401, `token ${i + 1} is still refused`)
  // The refusals are the journal's: the ID is known and a new token is accepted.
  t.equal((await connectOnce(second.port, id, createV1Token(id, secret))).status, 200, 'a new token is accepted')
  t.same(await second.proc.stop(), { code: 0, signal: null })
}

const problem = buildProblem(t)
if (problem !== undefined) {
  t.fail(problem)
} else {
  t.test('tokens accepted before and after the journal is removed are refused after a SIGKILL and a restart', async t => {
    const dataDir = newDataDir(t, 'rv-serve-journal-removed-')
    const { id, secret } = await addId(t, dataDir)
    const { proc, port } = await serveForReplay(t, dataDir)
    const before = createV1Token(id, secret)
    t.equal((await connectOnce(port, id, before)).status, 200)
    const [journal] = journals(dataDir)
    unlinkSync(join(dataDir, journal!))
    const after = createV1Token(id, secret)
    t.equal((await connectOnce(port, id, after)).status, 200, 'tokens are still accepted')
    t.same(journals(dataDir), [journal], 'the journal is back under its name')
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`)
    t.equal(ready.status, 200, 'and the server is ready')
    await until(() => proc.stdout().includes(RECREATED), 3_000, 'the warning')
    const warned = proc.stdout().split('\n').filter(line => line.includes(RECREATED))
    t.equal(warned.length, 1, 'one warning')
    t.match(JSON.parse(warned[0] ?? '{}'), { level: 40, file: join(dataDir, journal!) }, 'at warn, naming the file')
    t.same(await proc.stop('SIGKILL'), { code: null, signal: 'SIGKILL' })
    await refusedAfterRestart(t, dataDir, id, secret, [before, after])
  })

  t.test('a token accepted before the data dir is removed is refused after a SIGKILL and a restart', async t => {
    const dataDir = newDataDir(t, 'rv-serve-journal-removed-')
    const { id, secret } = await addId(t, dataDir)
    const { proc, port } = await serveForReplay(t, dataDir)
    const before = createV1Token(id, secret)
    t.equal((await connectOnce(port, id, before)).status, 200)
    rmSync(dataDir, { recursive: true })
    // With no CONNECT, the server's own look (once a second) makes the data dir and the journal again.
    await until(() => { try { return journals(dataDir).length === 1 } catch { return false } }, 3_000, 'the journal recreated')
    t.equal(statSync(dataDir).mode & 0o777, 0o700, 'the data dir made again is private')
    // The line reaches the pipe a moment after the file is in place.
    await until(() => proc.stdout().includes(RECREATED), 3_000, 'the warning')
    t.same(await proc.stop('SIGKILL'), { code: null, signal: 'SIGKILL' })
    // The IDs went with the data dir: the same one is added again.
    const again = await runCli(t, ['ids', 'add', '--data-dir', dataDir, '--id', id, '--secret', secret])
    t.equal(again.code, 0, again.stderr)
    await refusedAfterRestart(t, dataDir, id, secret, [before])
  })
}
