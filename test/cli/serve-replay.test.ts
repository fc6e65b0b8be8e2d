import { chmodSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { createTotp } from '../../lib/tokens/totp'
import { createV1Token } from '../../lib/tokens/v1'
import { buildProblem, CLI_MAIN, runCli, spawnProc } from '../helpers/cli'
import { connectOnce } from '../helpers/wire'
import { addId } from '../helpers/e2e'
import { LISTENING, newDataDir, replayServeArgs, serveForReplay } from '../helpers/replay-serve'

// A token is single-use across restarts of serve too, graceful or not: the
// replay cache keeps a journal in the data dir (docs/security.md).

const park = connectOnce

const problem = buildProblem(t)
if (problem !== undefined) {
  t.fail(problem)
} else {
  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    t.test(`a v1 token and a strict TOTP code used before a ${signal} are refused after the restart`, async t => {
      const dataDir = newDataDir(t, 'rv-serve-replay-')
      const { id, secret } = await addId(t, dataDir)
      const first = await serveForReplay(t, dataDir)
      const v1 = createV1Token(id, secret)
      const code = createTotp(secret)
      t.equal((await park(first.port, id, v1)).status, 200, 'v1 token accepted')
      t.equal((await park(first.port, id, v1)).status, 401, 'v1 token replayed')
      t.equal((await park(first.port, id, code)).status, 200, 'TOTP code accepted')
      t.equal((await park(first.port, id, code)).status, 401, 'TOTP code replayed')
      t.same(await first.proc.stop(signal), { code: signal === 'SIGTERM' ? 0 : null, signal: signal === 'SIGTERM' ? null : 'SIGKILL' })

      const second = await serveForReplay(t, dataDir)
      t.match(second.proc.stdout(), /replay journal opened/)
      t.equal((await park(second.port, id, v1)).status, 401, 'the v1 token is still refused')
      t.equal((await park(second.port, id, code)).status, 401, 'the TOTP code is still refused')
      // The refusals are the journal's, not a server that refuses everything.
      t.equal((await park(second.port, id, createV1Token(id, secret))).status, 200, 'a new v1 token is accepted')
      t.equal((await park(second.port, id, createTotp(secret, Date.now() + 30_000))).status, 200, 'the next step\'s code is accepted')
      t.same(await second.proc.stop(), { code: 0, signal: null })

      const journals = readdirSync(dataDir).filter(name => name.endsWith('.journal'))
      t.equal(journals.length, 1, `one journal left, the last process's: ${journals.join(', ')}`)
      t.equal(statSync(join(dataDir, journals[0]!)).mode & 0o777, 0o600, 'the journal is private')
      t.same(readFileSync(join(dataDir, journals[0]!), 'utf8').trim().split('\n').slice(1).length, 4, 'the four accepted keys, after the line with the window')
    })
  }

  t.test('a v1 token used before a restart with a wider --token-skew stays refused inside the new window', async t => {
    const dataDir = newDataDir(t, 'rv-serve-replay-')
    const { id, secret } = await addId(t, dataDir)
    const first = await serveForReplay(t, dataDir, ['--token-skew', '1'])
    // Half a second old, so that its whole second is at most 1 s from the server's wherever the second boundaries fall.
    // The narrow window's entry (the skew, 1 s, and a 5 s margin) ends 6 s after the token's time.
    const madeAt = Date.now() - 500
    const v1 = createV1Token(id, secret, { now: madeAt })
    t.equal((await park(first.port, id, v1)).status, 200, 'accepted under --token-skew 1')
    t.same(await first.proc.stop('SIGTERM'), { code: 0, signal: null })
    await new Promise(resolve => setTimeout(resolve, Math.max(0, madeAt + 7_500 - Date.now())))

    const second = await serveForReplay(t, dataDir, ['--token-skew', '120'])
    t.ok(Date.now() - madeAt > 7_000, 'past the end of the entry the first server wrote')
    t.equal((await park(second.port, id, v1)).status, 401, 'the replay under --token-skew 120 is refused')
    t.equal((await park(second.port, id, createV1Token(id, secret, { now: madeAt }))).status, 200, 'a new token as old is accepted: the window does reach it')
    t.same(await second.proc.stop(), { code: 0, signal: null })
  })

  t.test('a journal other users can write is refused as ids.json is', async t => {
    const dataDir = newDataDir(t, 'rv-serve-replay-')
    const { id, secret } = await addId(t, dataDir)
    const { proc, port } = await serveForReplay(t, dataDir)
    // A token accepted, so that the journal outlives the stop.
    t.equal((await park(port, id, createV1Token(id, secret))).status, 200)
    t.same(await proc.stop(), { code: 0, signal: null })
    const journal = join(dataDir, readdirSync(dataDir).find(name => name.endsWith('.journal'))!)
    chmodSync(journal, 0o620)
    const res = await runCli(t, replayServeArgs(dataDir))
    t.equal(res.code, 1, `exit 1: ${res.stderr}`)
    t.equal(res.stderr, `rendezvous: Refusing to use ${journal}: the file has mode 0620, writable by other users; run chmod 600 on it\n`)
    t.notMatch(res.stdout, /listening on/, 'never listened')
  })

  t.test('a journal that cannot be written refuses tokens with 503, logs it once, and keeps what it wrote', async t => {
    const dataDir = newDataDir(t, 'rv-serve-replay-')
    const { id, secret } = await addId(t, dataDir)
    // Files of 1 KiB at most (512-byte blocks): a dozen keys fit, then every write fails with EFBIG, as one fails
    // with ENOSPC on a full disk (serve does not let SIGXFSZ kill it).
    const proc = spawnProc(t, 'serve (ulimit -f 2)', '/bin/sh', ['-c', 'ulimit -f 2 && exec "$0" "$@"', process.execPath, CLI_MAIN, ...replayServeArgs(dataDir)], { env: { DEBUG: '' }, watchdog: false })
    const port = Number((await proc.waitFor(LISTENING, 30_000))[1])
    const accepted: string[] = []
    let refused: { token: string, text: string } | undefined
    for (let i = 0; i < 60 && refused === undefined; i++) {
      const token = createV1Token(id, secret)
      const answer = await park(port, id, token)
      if (answer.status === 200) accepted.push(token)
      else refused = { token, text: answer.text }
    }
    t.ok(accepted.length >= 3, `${accepted.length} tokens accepted while the journal had room`)
    t.ok(refused !== undefined, 'then a token is refused')
    t.match(refused?.text, /^HTTP\/1\.1 503 Service Unavailable\r\n/, 'with 503, as a full cache')
    t.match(refused?.text, /\r\nRetry-After: \d+\r\n/)
    const again = await park(port, id, createV1Token(id, secret))
    t.equal(again.status, 503, 'and the next one too')
    const metrics = await fetch(`http://127.0.0.1:${port}/metrics`).then(async res => await res.text())
    t.match(metrics, /\nrendezvous_refusals_total\{side="hidden",reason="store_unavailable"\} 2\n/, 'counted as a store that cannot answer')
    const logged = proc.stdout().split('\n').filter(line => line.includes('the replay journal cannot be written'))
    t.equal(logged.length, 1, 'logged once')
    t.match(logged[0], /EFBIG/, 'with the reason')
    t.same(await proc.stop(), { code: 0, signal: null })

    const second = await serveForReplay(t, dataDir)
    t.match(second.proc.stdout(), /unreadable lines of a replay journal were skipped/, 'the torn last line is skipped')
    for (const token of accepted) t.equal((await park(second.port, id, token)).status, 401, 'every accepted token is still refused')
    t.equal((await park(second.port, id, refused!.token)).status, 200, 'the refused token was never used, so it is accepted now')
    t.same(await second.proc.stop(), { code: 0, signal: null })
  })
}
